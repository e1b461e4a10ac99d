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
The gateway access-log format: JSON with the CF fields. process_type reads CF-App-Process-Type, the header the
controller sets on every destination (the Go routecontroller's config read APP-PROCESS-TYPE and always logged "-").
Keys are sorted when rendered, so the output is stable.
*/}}
{{- define "cfnet.accessLogFormat" -}}
{{- $f := dict
  "app_id" "%REQ(CF-APP-ID)%"
  "authority" "%REQ(:AUTHORITY)%"
  "bytes_received" "%BYTES_RECEIVED%"
  "bytes_sent" "%BYTES_SENT%"
  "downstream_local_address" "%DOWNSTREAM_LOCAL_ADDRESS%"
  "downstream_remote_address" "%DOWNSTREAM_REMOTE_ADDRESS%"
  "duration" "%DURATION%"
  "method" "%REQ(:METHOD)%"
  "organization_id" "%REQ(CF-ORGANIZATION-ID)%"
  "path" "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
  "process_type" "%REQ(CF-APP-PROCESS-TYPE)%"
  "protocol" "%PROTOCOL%"
  "referer" "%REQ(REFERER)%"
  "request_id" "%REQ(X-REQUEST-ID)%"
  "requested_server_name" "%REQUESTED_SERVER_NAME%"
  "response_code" "%RESPONSE_CODE%"
  "response_duration" "%RESPONSE_DURATION%"
  "response_flags" "%RESPONSE_FLAGS%"
  "response_tx_duration" "%RESPONSE_TX_DURATION%"
  "space_id" "%REQ(CF-SPACE-ID)%"
  "start_time" "%START_TIME%"
  "upstream_cluster" "%UPSTREAM_CLUSTER%"
  "upstream_host" "%UPSTREAM_HOST%"
  "upstream_local_address" "%UPSTREAM_LOCAL_ADDRESS%"
  "upstream_service_time" "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"
  "upstream_transport_failure_reason" "%UPSTREAM_TRANSPORT_FAILURE_REASON%"
  "user_agent" "%REQ(USER-AGENT)%"
  "x_b3_parentspanid" "%REQ(X-B3-PARENTSPANID)%"
  "x_b3_spanid" "%REQ(X-B3-SPANID)%"
  "x_b3_traceid" "%REQ(X-B3-TRACEID)%"
  "x_forwarded_for" "%REQ(X-FORWARDED-FOR)%"
  "x_forwarded_proto" "%REQ(X-FORWARDED-PROTO)%"
-}}
{{- toJson $f -}}
{{- end -}}
