{{- define "ironlog-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ironlog-operator.serviceAccountName" -}}
{{- default (include "ironlog-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "ironlog-operator.selectorLabels" -}}
app.kubernetes.io/name: ironlog-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ironlog-operator.labels" -}}
{{ include "ironlog-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
