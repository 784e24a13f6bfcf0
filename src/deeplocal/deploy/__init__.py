"""Kubernetes deployment logic: the `LLMDeployment` spec, the manifests it becomes, and its status.

Everything here is pure (spec in, manifests and status out) so that `deeplocal deploy render` and the
kopf operator in deploy/operator/ produce the same objects, and tests check them without a cluster.
"""
