{{/*
Labels of every object the chart itself makes (the compiled Argo objects carry their own).
*/}}
{{- define "outpost.labels" -}}
app.kubernetes.io/name: outpost
app.kubernetes.io/part-of: outpost
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- range $key, $value := .Values.agent.labels }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/*
The `agent:` values are compile-time: files/argo was compiled from them by `outpost render
--chart`. Rendering with other `agent:` values would install objects that do not match the
values, so the chart refuses.
*/}}
{{- define "outpost.compiledAgent" -}}
{{- $record := .Files.Get "files/argo/compiled-values.json" -}}
{{- if not $record -}}
{{- fail "files/argo/compiled-values.json is missing: run `outpost render --chart <this chart>` to compile the Argo objects" -}}
{{- end -}}
{{- $compiled := get ($record | fromJson) "agent" | toJson -}}
{{- $given := .Values.agent | toJson -}}
{{- if ne $compiled $given -}}
{{- fail (printf "\n\nThe `agent:` values differ from the ones files/argo was compiled from.\n`agent:` is compile-time: run\n\n  outpost render --chart <this chart> --values <your values file>\n\nthen install with the same values file.\n  compiled: %s\n  given:    %s" $compiled $given) -}}
{{- end -}}
{{- $compiled -}}
{{- end -}}

{{/*
169.254.169.254 (the cloud metadata service) as a number.
*/}}
{{- define "outpost.metadataAddress" -}}2852039166{{- end -}}

{{/*
Whether an IPv4 CIDR contains 169.254.169.254: "contains", "equals" or "". IPv6 CIDRs never do.
*/}}
{{- define "outpost.cidrHoldsMetadata" -}}
{{- $cidr := . -}}
{{- if not (contains ":" $cidr) -}}
{{- $parts := splitList "/" $cidr -}}
{{- $octets := splitList "." (first $parts) -}}
{{- $bits := 32 -}}
{{- if gt (len $parts) 1 }}{{ $bits = atoi (last $parts) }}{{ end -}}
{{- $address := 0 -}}
{{- range $octets }}{{ $address = add (mul $address 256) (atoi .) }}{{ end -}}
{{- $block := 1 -}}
{{- range until (int (sub 32 $bits)) }}{{ $block = mul $block 2 }}{{ end -}}
{{- $metadata := int64 (include "outpost.metadataAddress" .) -}}
{{- if eq (div $address $block) (div $metadata $block) -}}
{{- if eq $bits 32 }}equals{{ else }}contains{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
One egress rule for a destination: {cidr, except, ports} or {podSelector,
namespaceSelector, ports}. The metadata address is excluded from every CIDR that holds it.
*/}}
{{- define "outpost.egressRule" -}}
{{- $d := .destination -}}
- to:
{{- if $d.cidr }}
    - ipBlock:
        cidr: {{ $d.cidr | quote }}
        {{- $except := $d.except | default list -}}
        {{- $holds := include "outpost.cidrHoldsMetadata" $d.cidr -}}
        {{- if eq $holds "equals" -}}
        {{- fail (printf "networkPolicy (%s): %s is the cloud metadata service, which the agent may never reach" .what $d.cidr) -}}
        {{- end -}}
        {{- if and (eq $holds "contains") (not (has "169.254.169.254/32" $except)) -}}
        {{- $except = append $except "169.254.169.254/32" -}}
        {{- end -}}
        {{- with $except }}
        except:
          {{- range . }}
          - {{ . | quote }}
          {{- end }}
        {{- end }}
{{- else if or $d.podSelector $d.namespaceSelector }}
{{- $peer := dict }}
{{- with $d.namespaceSelector }}{{ $_ := set $peer "namespaceSelector" . }}{{ end }}
{{- with $d.podSelector }}{{ $_ := set $peer "podSelector" . }}{{ end }}
{{- toYaml (list $peer) | nindent 4 }}
{{- else }}
{{- fail (printf "networkPolicy (%s): a destination needs `cidr` or a `podSelector`/`namespaceSelector`" .what) }}
{{- end }}
{{- if not $d.ports }}
{{- fail (printf "networkPolicy (%s): a destination needs `ports`: egress is allowed to named ports only" .what) }}
{{- end }}
  ports:
  {{- range $d.ports }}
    - port: {{ .port }}
      protocol: {{ .protocol | default "TCP" }}
  {{- end }}
{{- end -}}
