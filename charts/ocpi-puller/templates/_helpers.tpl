{{/* Names -------------------------------------------------------------------------------- */}}

{{/* The chart's name, or nameOverride. */}}
{{- define "ocpi-puller.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: "<release>-<chart>", or just the release when it holds the chart. */}}
{{- define "ocpi-puller.fullname" -}}
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

{{/* The Job's name, which is also the pull id: "<fullname>-<runId or revision>". A Job name is
at most 63 characters (it becomes a label value), so the base is cut to 52. */}}
{{- define "ocpi-puller.jobName" -}}
{{- $base := include "ocpi-puller.fullname" . | trunc 52 | trimSuffix "-" }}
{{- printf "%s-%v" $base (default .Release.Revision .Values.job.runId) }}
{{- end }}

{{/* A CronJob's name: at most 52 characters, its Jobs append an 11-character suffix. */}}
{{- define "ocpi-puller.cronJobName" -}}
{{- include "ocpi-puller.fullname" . | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "ocpi-puller.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ocpi-puller.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "ocpi-puller.secretName" -}}
{{- default (printf "%s-credentials" (include "ocpi-puller.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{/* The variable holding partner number N's token (the partners file's token_env). */}}
{{- define "ocpi-puller.tokenEnv" -}}
{{- printf "OCPI_PARTNER_TOKEN_%d" . }}
{{- end }}

{{/* Labels ------------------------------------------------------------------------------- */}}

{{- define "ocpi-puller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ocpi-puller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ocpi-puller.labels" -}}
helm.sh/chart: {{ include "ocpi-puller.chart" . }}
{{ include "ocpi-puller.selectorLabels" . }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | quote }}
app.kubernetes.io/component: puller
app.kubernetes.io/part-of: ocpi-puller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* An environment variable's value: strings as they are; numbers and booleans as JSON, which
writes 1000000 where Go's default format would write 1e+06. */}}
{{- define "ocpi-puller.envValue" -}}
{{- if kindIs "string" . }}{{ quote . }}{{ else }}{{ toJson . | quote }}{{ end }}
{{- end }}

{{/* The puller's environment ------------------------------------------------------------- */}}

{{- define "ocpi-puller.env" -}}
# The pull id is the Job's name: the same after a pod restart (which then
# resumes from the checkpoints) and in every shard; each CronJob run is a new Job.
- name: OCPI_PULLER_PULL_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['batch.kubernetes.io/job-name']
{{- if eq .Values.mode "indexed" }}
# Kubernetes sets JOB_COMPLETION_INDEX in each pod: the puller's shard index.
- name: OCPI_PULLER_SHARD_COUNT
  value: {{ .Values.indexed.shardCount | int | quote }}
{{- end }}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
- name: OCPI_PULLER_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: OCPI_PULLER_TOPIC_PARTITIONS
  value: {{ .Values.kafka.topicPartitions | int | quote }}
- name: OCPI_PULLER_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | int | quote }}
{{- with .Values.identity.countryCode }}
- name: OCPI_PULLER_FROM_COUNTRY
  value: {{ . | quote }}
{{- end }}
{{- with .Values.identity.partyId }}
- name: OCPI_PULLER_FROM_PARTY
  value: {{ . | quote }}
{{- end }}
- name: OCPI_PULLER_OUTPUT
  value: json
- name: OCPI_PULLER_NO_PROGRESS_BAR
  value: "true"
{{- range $name, $value := .Values.settings }}
- name: OCPI_PULLER_{{ upper $name }}
  value: {{ include "ocpi-puller.envValue" $value }}
{{- end }}
{{- range $index, $partner := .Values.partners }}
- name: {{ include "ocpi-puller.tokenEnv" $index }}
  valueFrom:
    secretKeyRef:
      name: {{ include "ocpi-puller.secretName" $ }}
      key: {{ default $partner.name $partner.tokenKey }}
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .Values.otel.protocol | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ default (include "ocpi-puller.fullname" .) .Values.otel.serviceName | quote }}
# The pod's own resource attributes, then otel.resourceAttributes.
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME),k8s.job.name=$(OCPI_PULLER_PULL_ID)
    {{- with .Values.otel.resourceAttributes }},{{ . }}{{ end }}"
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The Job spec shared by the Job, the Indexed Job and the CronJob's jobTemplate ---------- */}}

{{- define "ocpi-puller.jobSpec" -}}
backoffLimit: {{ .Values.job.backoffLimit | int }}
{{- with .Values.job.activeDeadlineSeconds }}
activeDeadlineSeconds: {{ . | int }}
{{- end }}
{{- with .Values.job.ttlSecondsAfterFinished }}
ttlSecondsAfterFinished: {{ . | int }}
{{- end }}
{{- if eq .Values.mode "indexed" }}
completionMode: Indexed
completions: {{ .Values.indexed.shardCount | int }}
parallelism: {{ .Values.indexed.shardCount | int }}
{{- end }}
{{- if .Values.job.podFailurePolicy }}
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: puller
        operator: In
        values: [2, 3]
    # status is required by the API schema (a server defaults it to "True", schema validators
    # and GitOps linters refuse the rule without it).
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
{{- end }}
template:
  metadata:
    labels:
      {{- include "ocpi-puller.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: puller
      {{- with .Values.podLabels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with .Values.podAnnotations }}
    annotations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  spec:
    restartPolicy: Never
    automountServiceAccountToken: false
    {{- with .Values.serviceAccountName }}
    serviceAccountName: {{ . }}
    {{- end }}
    {{- with .Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds | int }}
    securityContext:
      {{- toYaml .Values.podSecurityContext | nindent 6 }}
    containers:
      - name: puller
        image: {{ include "ocpi-puller.image" . | quote }}
        imagePullPolicy: {{ .Values.image.pullPolicy }}
        args:
          - pull
          - --partners
          - /etc/ocpi-puller/partners.yaml
          {{- if eq .Values.mode "cronjob" }}
          - --incremental
          {{- end }}
          {{- range .Values.extraArgs }}
          - {{ . | quote }}
          {{- end }}
        env:
          {{- include "ocpi-puller.env" . | nindent 10 }}
        securityContext:
          {{- toYaml .Values.securityContext | nindent 10 }}
        resources:
          {{- toYaml .Values.resources | nindent 10 }}
        volumeMounts:
          - name: partners
            mountPath: /etc/ocpi-puller
            readOnly: true
          - name: tmp
            mountPath: /tmp
          {{- with .Values.extraVolumeMounts }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
    volumes:
      - name: partners
        configMap:
          name: {{ include "ocpi-puller.fullname" . }}-partners
      - name: tmp
        emptyDir:
          sizeLimit: {{ .Values.tmpSizeLimit }}
      {{- with .Values.extraVolumes }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with .Values.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
