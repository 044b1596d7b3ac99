{{- define "streamsplit.name" -}}streamsplit{{- end -}}

{{/* Labels of workloads, which add their selector labels (including the instance) themselves. */}}
{{- define "streamsplit.commonLabels" -}}
app.kubernetes.io/part-of: streamsplit
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "streamsplit.labels" -}}
{{ include "streamsplit.commonLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "streamsplit.operator.fullname" -}}{{ .Release.Name }}-operator{{- end -}}

{{- define "streamsplit.operator.selector" -}}
app.kubernetes.io/name: streamsplit-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "streamsplit.router.selector" -}}
app.kubernetes.io/name: streamsplit-router
app.kubernetes.io/instance: {{ .root.Release.Name }}
streamsplit.io/pool: {{ .pool.name }}
{{- end -}}

{{- define "streamsplit.image" -}}
{{- $image := index .root.Values.image .component -}}
{{ $image.repository }}:{{ $image.tag | default .root.Chart.AppVersion }}
{{- end -}}

{{/* librdkafka security settings derived from kafka.tls / kafka.sasl, as --kafka-property flags. */}}
{{- define "streamsplit.kafka.args" -}}
{{- $k := .Values.kafka -}}
{{- if and $k.tls.enabled $k.sasl.enabled }}
- --kafka-property=security.protocol=SASL_SSL
{{- else if $k.tls.enabled }}
- --kafka-property=security.protocol=SSL
{{- else if $k.sasl.enabled }}
- --kafka-property=security.protocol=SASL_PLAINTEXT
{{- end }}
{{- if $k.tls.enabled }}
- --kafka-property=ssl.ca.location=/etc/streamsplit/kafka-tls/{{ $k.tls.caKey }}
{{- if and $k.tls.certKey $k.tls.keyKey }}
- --kafka-property=ssl.certificate.location=/etc/streamsplit/kafka-tls/{{ $k.tls.certKey }}
- --kafka-property=ssl.key.location=/etc/streamsplit/kafka-tls/{{ $k.tls.keyKey }}
{{- end }}
{{- end }}
{{- if $k.sasl.enabled }}
- --kafka-property=sasl.mechanism={{ $k.sasl.mechanism }}
{{- /* Read from the mounted Secret: a value on the command line shows in /proc/<pid>/cmdline. */}}
- --kafka-property-file=sasl.username=/etc/streamsplit/kafka-sasl/{{ $k.sasl.usernameKey }}
- --kafka-property-file=sasl.password=/etc/streamsplit/kafka-sasl/{{ $k.sasl.passwordKey }}
{{- end }}
{{- range $key, $value := $k.properties }}
- --kafka-property={{ $key }}={{ $value }}
{{- end }}
{{- end -}}

{{- define "streamsplit.kafka.volumeMounts" -}}
{{- if .Values.kafka.tls.enabled }}
- name: kafka-tls
  mountPath: /etc/streamsplit/kafka-tls
  readOnly: true
{{- end }}
{{- if .Values.kafka.sasl.enabled }}
- name: kafka-sasl
  mountPath: /etc/streamsplit/kafka-sasl
  readOnly: true
{{- end }}
{{- end -}}

{{- define "streamsplit.kafka.volumes" -}}
{{- if .Values.kafka.tls.enabled }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.secretName | quote }}
    defaultMode: 0440
{{- end }}
{{- if .Values.kafka.sasl.enabled }}
- name: kafka-sasl
  secret:
    secretName: {{ .Values.kafka.sasl.secretName | quote }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "streamsplit.podEnv" -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
{{- end -}}
