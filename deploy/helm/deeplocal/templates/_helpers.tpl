{{- define "deeplocal.fullname" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "deeplocal.selector" -}}
app.kubernetes.io/name: deeplocal
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "deeplocal.labels" -}}
{{ include "deeplocal.selector" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "deeplocal.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "deeplocal.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "deeplocal.importsModel" -}}
{{- if and (contains "/" .Values.model.source) (not (hasPrefix "/" .Values.model.source)) }}true{{ end -}}
{{- end -}}

{{- define "deeplocal.modelsVolume" -}}
- name: models
{{- if .Values.modelStorage.hostPath }}
  hostPath:
    path: {{ .Values.modelStorage.hostPath }}
    type: DirectoryOrCreate
{{- else }}
  persistentVolumeClaim:
    claimName: {{ .Values.modelStorage.existingClaim | default (printf "%s-models" (include "deeplocal.fullname" .)) }}
{{- end }}
{{- end -}}

{{- define "deeplocal.importContainer" -}}
- name: import-model
  image: {{ .Values.image.cpu }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command:
    - /bin/sh
    - -c
    - {{ printf "deeplocal models info %s >/dev/null 2>&1 || deeplocal models pull %s --id %s%s" .Values.model.name .Values.model.source .Values.model.name (ternary "" " --include '*.gguf'" .Values.engine.enabled) | quote }}
  env:
    - {name: DEEPLOCAL_MODELS_DIR, value: /models}
    - {name: HOME, value: /tmp}
    {{- if .Values.model.hubEndpoint }}
    - {name: HF_ENDPOINT, value: {{ .Values.model.hubEndpoint | quote }}}
    {{- end }}
  volumeMounts:
    - {name: models, mountPath: /models}
    - {name: tmp, mountPath: /tmp}
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits: {memory: 4Gi}
  securityContext:
    {{- include "deeplocal.containerSecurity" . | nindent 4 }}
{{- end -}}

{{- define "deeplocal.checks" -}}
{{- if not .Values.gateway.auth }}
{{- fail "gateway.auth must be true: in a pod the gateway listens on 0.0.0.0 and refuses to start without API-key auth" }}
{{- end }}
{{- if and (gt (int .Values.gateway.replicas) 1) (not .Values.secrets.database) }}
{{- fail "gateway.replicas > 1 needs secrets.database (a shared PostgreSQL URL); SQLite lives on one replica's volume" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not .Values.engine.enabled) (gt (int .Values.autoscaling.maxReplicas) 1) (not .Values.secrets.database) }}
{{- fail "autoscaling the gateway (engine.enabled false) beyond one replica needs secrets.database" }}
{{- end }}
{{- if and .Values.audit.storeBodies (not .Values.secrets.auditKey) }}
{{- fail "audit.storeBodies needs secrets.auditKey: bodies are only kept encrypted" }}
{{- end }}
{{- end -}}
