{{- define "ha-nginx.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ha-nginx.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "ha-nginx.controllerSelector" -}}
app.kubernetes.io/name: ha-nginx-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ha-nginx.nginxSelector" -}}
app.kubernetes.io/name: ha-nginx-nginx
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ha-nginx.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "ha-nginx.uninstallSelector" -}}
app.kubernetes.io/name: ha-nginx-uninstall
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- /* The pre-delete hook's annotations; the argument is its weight (RBAC before the Job). */ -}}
{{- define "ha-nginx.uninstallHook" -}}
helm.sh/hook: pre-delete
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}
