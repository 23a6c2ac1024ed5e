{{/* The chart's name, shortened to what Kubernetes names allow. */}}
{{- define "reconciler.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: also the kopf peering name and the RBAC objects' name. */}}
{{- define "reconciler.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "reconciler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "reconciler.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "reconciler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: reconciler
{{- end }}

{{- define "reconciler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "reconciler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The reconciler.io resources the operator serves: one per generated CRD in crds/ (file
     <plural>.reconciler.io.yaml), so a new kind needs no edit here. */}}
{{- define "reconciler.resources" -}}
{{- range $path, $_ := .Files.Glob "crds/*.reconciler.io.yaml" }}
- {{ base $path | trimSuffix ".reconciler.io.yaml" }}
{{- end }}
{{- end }}

{{- define "reconciler.statusResources" -}}
{{- range (include "reconciler.resources" . | fromYamlArray) }}
- {{ . }}/status
{{- end }}
{{- end }}

{{/* Rules for the operator's own resources, wherever it serves them. */}}
{{- define "reconciler.resourceRules" -}}
- apiGroups: ["reconciler.io"]
  resources:
    {{- include "reconciler.resources" . | nindent 4 }}
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["reconciler.io"]
  resources:
    {{- include "reconciler.statusResources" . | trim | nindent 4 }}
  verbs: ["patch", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Rules kopf needs cluster-wide in every mode: it scans namespaces and CRDs. */}}
{{- define "reconciler.scanningRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{- define "reconciler.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
