{{/* Chart name. */}}
{{- define "cors-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the prefix of every object's name. */}}
{{- define "cors-webhook.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cors-webhook.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "cors-webhook.labels" -}}
helm.sh/chart: {{ include "cors-webhook.chart" . }}
{{ include "cors-webhook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cors-webhook
{{- end }}

{{/* Labels that select the webhook pods. */}}
{{- define "cors-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cors-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The label that marks the webhook's own objects (its pods, the declared Plugin): the webhooks'
objectSelector skips them, so the webhook never waits for itself.
*/}}
{{- define "cors-webhook.ignoreLabelKey" -}}cors-webhook.io/ignore{{- end }}

{{/* The controller: its own name, labels and service account. */}}
{{- define "cors-webhook.controllerName" -}}
{{- printf "%s-controller" (include "cors-webhook.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cors-webhook.controllerSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-controller" (include "cors-webhook.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cors-webhook.controllerLabels" -}}
helm.sh/chart: {{ include "cors-webhook.chart" . }}
{{ include "cors-webhook.controllerSelectorLabels" . }}
app.kubernetes.io/component: controller
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cors-webhook
{{- end }}

{{- define "cors-webhook.controllerServiceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "cors-webhook.controllerName" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create is false" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds of the webhook pods: must exceed the shutdown delay. */}}
{{- define "cors-webhook.terminationGracePeriodSeconds" -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownDelaySeconds) }}
{{- fail "terminationGracePeriodSeconds must be greater than shutdownDelaySeconds" }}
{{- end }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}

{{/*
Arguments both processes take alike: the CORS plugins and injector settings (the controller
computes the policies admission injects), and the certificate settings.
*/}}
{{- define "cors-webhook.sharedArgs" -}}
- --cors-plugins={{ join "," .Values.validation.corsPlugins }}
- --sidecar-image={{ include "cors-webhook.sidecarImage" . }}
{{- with .Values.injector.sidecar.image.pullPolicy }}
- --sidecar-image-pull-policy={{ . }}
{{- end }}
{{- if .Values.injector.init.runAsRoot }}
- --init-as-root
{{- end }}
{{- if .Values.cni.enabled }}
- --redirect-mode=cni
{{- end }}
- --inbound-port={{ .Values.injector.sidecar.inboundPort }}
- --admin-port={{ .Values.injector.sidecar.adminPort }}
- --sidecar-cpu-request={{ .Values.injector.sidecar.resources.requests.cpu }}
- --sidecar-memory-request={{ .Values.injector.sidecar.resources.requests.memory }}
{{ include "cors-webhook.sidecarResourceArgs" . }}
{{ include "cors-webhook.tenancyArgs" . }}
- --cert-mode={{ .Values.certs.mode }}
{{- if eq .Values.certs.mode "self-signed" }}
- --cert-secret={{ include "cors-webhook.tlsSecretName" . }}
- --cert-secret-namespace=$(POD_NAMESPACE)
- --cert-service={{ include "cors-webhook.fullname" . }}
- --cert-cluster-domain={{ .Values.certs.clusterDomain }}
{{- with include "cors-webhook.devHost" . }}
- --cert-hosts={{ . }}
{{- end }}
{{- end }}
- --validating-webhook-configuration={{ include "cors-webhook.webhookConfigName" . }}
- --mutating-webhook-configuration={{ include "cors-webhook.webhookConfigName" . }}
{{- end }}

{{- define "cors-webhook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cors-webhook.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cors-webhook.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "cors-webhook.cniImage" -}}
{{- printf "%s:%s" .Values.cni.image.repository (default .Chart.AppVersion .Values.cni.image.tag) }}
{{- end }}

{{/* The CNI node agent (cni.enabled): its labels. */}}
{{- define "cors-webhook.cniSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-cni" (include "cors-webhook.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cors-webhook.cniLabels" -}}
helm.sh/chart: {{ include "cors-webhook.chart" . }}
{{ include "cors-webhook.cniSelectorLabels" . }}
app.kubernetes.io/component: cni
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cors-webhook
{{- end }}

{{- define "cors-webhook.sidecarImage" -}}
{{- with .Values.injector.sidecar.image }}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (default $.Chart.AppVersion .tag) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Names of the objects the server refers to by flag. */}}
{{- define "cors-webhook.tlsSecretName" -}}{{ include "cors-webhook.fullname" . }}-tls{{- end }}
{{- define "cors-webhook.webhookConfigName" -}}{{ include "cors-webhook.fullname" . }}{{- end }}
{{- define "cors-webhook.servingCertificateName" -}}{{ include "cors-webhook.fullname" . }}-serving{{- end }}
{{/* The controller's lease name; fixed by the server (server.LeaderElectionID). */}}
{{- define "cors-webhook.leaseName" -}}cors-webhook.cors-webhook.io{{- end }}

{{/* The host of webhook.devURL, which the serving certificate must also cover. */}}
{{- define "cors-webhook.devHost" -}}
{{- if .Values.webhook.devURL }}
{{- $u := urlParse .Values.webhook.devURL }}
{{- if ne $u.scheme "https" }}
{{- fail "webhook.devURL must be an https URL" }}
{{- end }}
{{- $u.hostname }}
{{- end }}
{{- end }}

{{/* The DNS names of the webhook Service. */}}
{{- define "cors-webhook.serviceDNSNames" -}}
{{- $svc := include "cors-webhook.fullname" . }}
{{- $ns := .Release.Namespace }}
- {{ $svc }}
- {{ $svc }}.{{ $ns }}
- {{ $svc }}.{{ $ns }}.svc
- {{ $svc }}.{{ $ns }}.svc.{{ .Values.certs.clusterDomain }}
{{- end }}

{{/*
clientConfig of a webhook: the Service, or webhook.devURL in development.
Call with (dict "root" $ "path" "/validate-...").
*/}}
{{- define "cors-webhook.clientConfig" -}}
{{- if .root.Values.webhook.devURL }}
url: {{ printf "%s%s" (trimSuffix "/" .root.Values.webhook.devURL) .path | quote }}
{{- else }}
service:
  name: {{ include "cors-webhook.fullname" .root }}
  namespace: {{ .root.Release.Namespace }}
  path: {{ .path }}
  port: 443
{{- end }}
{{- end }}

{{/* namespaceSelector shared by both webhook configurations. */}}
{{- define "cors-webhook.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range (uniq (append .Values.webhook.excludeNamespaces .Release.Namespace)) }}
        - {{ . | quote }}
        {{- end }}
    - key: cors-webhook.io/inject
      operator: NotIn
      values:
        - disabled
{{- end }}

{{/* objectSelector that skips the webhook's own objects. */}}
{{- define "cors-webhook.objectSelector" -}}
objectSelector:
  matchExpressions:
    - key: {{ include "cors-webhook.ignoreLabelKey" . }}
      operator: NotIn
      values:
        - "true"
{{- end }}

{{/* Annotations of the webhook configurations: cert-manager's CA injector fills caBundle. */}}
{{- define "cors-webhook.webhookConfigAnnotations" -}}
{{- if eq .Values.certs.mode "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "cors-webhook.servingCertificateName" . }}
{{- end }}
{{- end }}

{{/* Tenancy flags of serve: the cluster-chain namespaces (default: the release namespace) and
the namespaces the webhooks skip, whose PluginChains are ignored unless designated. */}}
{{- define "cors-webhook.tenancyArgs" -}}
- --cluster-chain-namespaces={{ join "," (default (list .Release.Namespace) .Values.tenancy.clusterChainNamespaces) }}
- --excluded-namespaces={{ join "," (uniq (append .Values.webhook.excludeNamespaces .Release.Namespace)) }}
{{- end }}

{{/* Ephemeral-storage request and limits of the injected containers, as serve flags. */}}
{{- define "cors-webhook.sidecarResourceArgs" -}}
{{- $r := .Values.injector.sidecar.resources -}}
- --sidecar-ephemeral-storage-request={{ index $r.requests "ephemeral-storage" | default "" }}
- --sidecar-cpu-limit={{ ($r.limits).cpu | default "" }}
- --sidecar-memory-limit={{ ($r.limits).memory | default "" }}
- --sidecar-ephemeral-storage-limit={{ index ($r.limits | default dict) "ephemeral-storage" | default "" }}
{{- end }}
