# ytcaption core: the control plane. A service job of at least two replicas
# (they share Postgres and elect one rescuer and retention sweeper), a
# prestart migrate task, and rolling updates behind a canary that roll back
# by themselves when the canary does not become healthy.

variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

variable "release_url" {
  description = "Where the release binaries are downloaded from (ytcaption-core at <release_url>/ytcaption-core)."
  type        = string
}

variable "count" {
  type    = number
  default = 2
}

job "ytcaption-core" {
  type        = "service"
  datacenters = var.datacenters

  update {
    max_parallel      = 1
    canary            = 1
    auto_promote      = true
    auto_revert       = true
    min_healthy_time  = "30s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
  }

  group "core" {
    count = var.count

    constraint {
      attribute = "${node.class}"
      value     = "control"
    }

    network {
      port "http" {}
      port "metrics" {}
    }

    # Leave Consul's catalog before the kill: the edges and gpu-nodes stop
    # sending calls here before core stops taking them.
    shutdown_delay = "10s"

    service {
      name     = "ytcaption-core"
      port     = "http"
      provider = "consul"

      # Prometheus scrapes /metrics here (nomad/README.md), off the API port.
      meta {
        metrics_port = "${NOMAD_PORT_metrics}"
      }

      check {
        type     = "http"
        path     = "/health/ready"
        interval = "10s"
        timeout  = "2s"
      }
    }

    # Settings and secrets from Nomad Variables at nomad/jobs/ytcaption-core:
    # postgres_url, s3_endpoint, s3_access_key, s3_secret_key, s3_bucket,
    # service_token, node_tokens, nomad_token (empty without Nomad ACLs),
    # yt_dlp_proxies (outbound proxies for yt-dlp, comma-separated, credentials
    # and all; empty: downloads go direct).
    task "migrate" {
      driver = "exec"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      artifact {
        source      = "${var.release_url}/ytcaption-core"
        mode        = "file"
        destination = "local/ytcaption-core"
      }

      config {
        command = "local/ytcaption-core"
        args    = ["migrate"]
      }

      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/ytcaption-core" }}YTCAPTION_CORE_POSTGRES_URL={{ .postgres_url }}{{ end }}
        EOT
        destination = "secrets/migrate.env"
        env         = true
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }

    # A current yt-dlp and Deno (the JavaScript runtime yt-dlp needs for
    # YouTube), fetched into the allocation and checked against the SHA-256s
    # in the Nomad Variable at nomad/jobs/ytcaption-core/core/tools:
    # yt_dlp_url, yt_dlp_sha256, deno_url, deno_sha256 (nomad/README.md).
    # Not artifact blocks: Nomad fetches artifacts before it renders
    # templates, so an artifact cannot read a variable; a version bump would
    # be a job-file edit. The path is this task's own (job/group/task), which
    # its workload identity may read without an ACL policy.
    task "tools" {
      driver = "exec"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      artifact {
        source      = "${var.release_url}/ytcaption-core"
        mode        = "file"
        destination = "local/ytcaption-core"
      }

      config {
        command = "local/ytcaption-core"
        # The alloc dir outlives task restarts: a restart re-checks the
        # checksums and downloads only what changed.
        args = ["tools", "fetch", "--dir", "${NOMAD_ALLOC_DIR}/tools"]
      }

      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/ytcaption-core/core/tools" }}
          YTCAPTION_TOOLS_YT_DLP_URL={{ .yt_dlp_url }}
          YTCAPTION_TOOLS_YT_DLP_SHA256={{ .yt_dlp_sha256 }}
          YTCAPTION_TOOLS_DENO_URL={{ .deno_url }}
          YTCAPTION_TOOLS_DENO_SHA256={{ .deno_sha256 }}
          {{ end }}
        EOT
        destination = "secrets/tools.env"
        env         = true
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }

    task "core" {
      driver = "exec"

      artifact {
        source      = "${var.release_url}/ytcaption-core"
        mode        = "file"
        destination = "local/ytcaption-core"
      }

      config {
        command = "local/ytcaption-core"
        args    = ["serve"]
      }

      env {
        YTCAPTION_CORE_ADDR         = ":${NOMAD_PORT_http}"
        YTCAPTION_CORE_METRICS_ADDR = ":${NOMAD_PORT_metrics}"
        YTCAPTION_CORE_WORK_DIR     = "${NOMAD_TASK_DIR}/work"
        YTCAPTION_CORE_LOG_FORMAT   = "json"
        # What the tools task fetched.
        YTCAPTION_CORE_YT_DLP      = "${NOMAD_ALLOC_DIR}/tools/yt-dlp"
        YTCAPTION_CORE_JS_RUNTIMES = "deno:${NOMAD_ALLOC_DIR}/tools/deno"
        # The local Nomad agent: the admin fleet view and GPU node drains.
        YTCAPTION_CORE_NOMAD_ADDR = "http://${attr.unique.network.ip-address}:4646"
      }

      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/ytcaption-core" }}
          YTCAPTION_CORE_POSTGRES_URL={{ .postgres_url }}
          YTCAPTION_CORE_S3_ENDPOINT={{ .s3_endpoint }}
          YTCAPTION_CORE_S3_ACCESS_KEY={{ .s3_access_key }}
          YTCAPTION_CORE_S3_SECRET_KEY={{ .s3_secret_key }}
          YTCAPTION_CORE_S3_BUCKET={{ .s3_bucket }}
          YTCAPTION_CORE_SERVICE_TOKEN={{ .service_token }}
          YTCAPTION_CORE_NODE_TOKENS={{ .node_tokens }}
          YTCAPTION_CORE_NOMAD_TOKEN={{ .nomad_token }}
          YTCAPTION_CORE_YT_DLP_PROXIES={{ .yt_dlp_proxies }}
          {{ end }}
        EOT
        destination = "secrets/core.env"
        env         = true
        change_mode = "restart"
      }

      # Give in-flight calls and downloads time to hand back on shutdown (its
      # HTTP shutdown waits up to 30s). Above Nomad's default cap of 30s: the
      # control clients raise max_kill_timeout (clients/control.hcl).
      kill_timeout = "35s"

      resources {
        cpu    = 1000
        memory = 512
      }
    }
  }
}
