"""vLLM behind deeplocal: `vllm serve` as supervised children (GPU, tensor/pipeline parallel, Ray).

Modules: config (VllmSettings), args (the command line, from settings or a planner's flags),
supervisor (one child's lifecycle), process (its environment and process group), stats
(/metrics -> BackendStats), replicas (several children, routed by load), backend (VllmBackend),
ray (the multi-node layout), preflight (`deeplocal doctor --gpu`).
"""
