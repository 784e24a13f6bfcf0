{{- define "deeplocal.vllmArgs" -}}
{{- $v := .Values.engine -}}
{{- $args := list "vllm" "serve" (ternary .Values.model.source (printf "/models/%s" .Values.model.name) (hasPrefix "/" .Values.model.source)) "--served-model-name" .Values.model.name "--host" "0.0.0.0" "--port" "8000" "--tensor-parallel-size" (toString (int $v.gpusPerPod)) "--pipeline-parallel-size" (toString (int $v.nodes)) "--max-model-len" (toString (int $v.maxModelLen)) "--max-num-seqs" (toString (int $v.maxNumSeqs)) "--gpu-memory-utilization" (toString $v.gpuMemoryUtilization) -}}
{{- $ray := ternary (list "--distributed-executor-backend" "ray") (list) (gt (int $v.nodes) 1) -}}
{{- toJson (concat $args $ray $v.extraArgs) -}}
{{- end -}}

{{- define "deeplocal.enginePod" -}}
{{- $v := .root.Values.engine -}}
metadata:
  labels:
    {{- include "deeplocal.labels" (dict "root" .root "component" "engine") | nindent 4 }}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 60
  securityContext:
    {{- include "deeplocal.podSecurity" .root | nindent 4 }}
  {{- if and .serves (include "deeplocal.importsModel" .root) }}
  initContainers:
    {{- include "deeplocal.importContainer" .root | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ ternary "vllm" "ray-worker" .serves }}
      image: {{ .root.Values.image.cuda }}
      imagePullPolicy: {{ .root.Values.image.pullPolicy }}
      command:
        {{- toYaml .command | nindent 8 }}
      env:
        - {name: HOME, value: /tmp}
        - {name: HF_HUB_OFFLINE, value: "1"}
        - {name: VLLM_NO_USAGE_STATS, value: "1"}
        - {name: DO_NOT_TRACK, value: "1"}
        {{- if .root.Values.secrets.engineKey }}
        - name: VLLM_API_KEY
          valueFrom: {secretKeyRef: {name: {{ .root.Values.secrets.engineKey }}, key: key}}
        {{- end }}
      {{- if .serves }}
      ports:
        - {name: http, containerPort: 8000}
      startupProbe:
        httpGet: {path: /health, port: http}
        periodSeconds: 10
        failureThreshold: 360
      livenessProbe:
        httpGet: {path: /health, port: http}
        periodSeconds: 15
        failureThreshold: 4
      readinessProbe:
        httpGet: {path: /health, port: http}
        periodSeconds: 5
        failureThreshold: 3
      {{- end }}
      resources:
        {{- $gpu := dict $v.gpuResource (toString (int $v.gpusPerPod)) }}
        {{- toYaml (merge (dict "limits" $gpu "requests" $gpu) $v.resources) | nindent 8 }}
      volumeMounts:
        - {name: models, mountPath: /models}
        - {name: tmp, mountPath: /tmp}
        - {name: dshm, mountPath: /dev/shm}
      securityContext:
        {{- include "deeplocal.containerSecurity" .root | nindent 8 }}
  volumes:
    {{- include "deeplocal.modelsVolume" .root | nindent 4 }}
    - name: tmp
      emptyDir: {}
    - name: dshm
      emptyDir: {medium: Memory, sizeLimit: {{ $v.shmSize }}}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
