{{/*
Names and labels shared by the templates. Object names follow the Go routecontroller (cf-for-k8s) so an upgrade
finds the same objects: ServiceAccount/ClusterRole/Deployment `routecontroller`, ConfigMap `routecontroller-config`.
*/}}

{{- define "cfnet.name" -}}routecontroller{{- end -}}

{{- define "cfnet.leaseName" -}}cf-k8s-networking-routecontroller{{- end -}}

{{- define "cfnet.gatewayName" -}}istio-ingressgateway{{- end -}}

{{/* Labels on every object of the chart. */}}
{{- define "cfnet.labels" -}}
app.kubernetes.io/part-of: cloudfoundry
app.kubernetes.io/component: cf-networking
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector of the controller pods; `app: routecontroller` is the Go controller's selector (immutable on upgrade). */}}
{{- define "cfnet.selectorLabels" -}}
app: routecontroller
{{- end -}}

{{- define "cfnet.controllerLabels" -}}
{{ include "cfnet.selectorLabels" . }}
app.kubernetes.io/name: routecontroller
{{ include "cfnet.labels" . }}
{{- end -}}

{{- define "cfnet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Gateway the controller binds external routes to: <systemNamespace>/istio-ingressgateway. */}}
{{- define "cfnet.gatewayRef" -}}
{{- printf "%s/%s" .Values.systemNamespace (include "cfnet.gatewayName" .) -}}
{{- end -}}

{{/* App domains other than the system domain (those are served with the system certificate). */}}
{{- define "cfnet.appOnlyDomains" -}}
{{- $out := list -}}
{{- range .Values.appDomains -}}
{{- if ne . $.Values.systemDomain -}}{{- $out = append $out . -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
The gateway access-log format: JSON with the CF fields, kept in files/access-log-format.json (the one source: the
local istiod of crates/testenv reads the same file). process_type reads CF-App-Process-Type, the header the
controller sets on every destination (the Go routecontroller's config read APP-PROCESS-TYPE and always logged "-").
Rendered compact with keys sorted, so the output is stable.
*/}}
{{- define "cfnet.accessLogFormat" -}}
{{- .Files.Get "files/access-log-format.json" | fromJson | toJson -}}
{{- end -}}
