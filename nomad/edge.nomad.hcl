# ytcaption edge: the public REST API (:8000) and Connect/gRPC front door
# (:8010) on every edge-class node, behind the load balancer, and Prometheus
# metrics on a port of their own. Edges hold no state: rate limits and
# idempotency live in Redis.

variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

variable "trusted_proxies" {
  description = "The load balancer's addresses or CIDR prefixes: only from these does the edge take X-Forwarded-For, -Host and -Proto (empty: from nobody; behind a TLS-terminating balancer, set it, or the edge sees plain http). The balancer must set those headers, not append to them."
  type        = string
  default     = ""
}

variable "release_url" {
  description = "Where the release binaries are downloaded from (<release_url>/ytcaption-edge)."
  type        = string
}

job "ytcaption-edge" {
  type        = "system"
  datacenters = var.datacenters

  constraint {
    attribute = "${node.class}"
    value     = "edge"
  }

  update {
    max_parallel = 1
    stagger      = "30s"
  }

  group "edge" {
    network {
      port "http" {
        static = 8000
      }
      port "connect" {
        static = 8010
      }
      port "metrics" {}
    }

    # Leave Consul's catalog before the kill: the load balancer stops sending
    # requests here before the edge stops taking them.
    shutdown_delay = "10s"

    service {
      name     = "ytcaption-edge"
      port     = "http"
      provider = "consul"

      # Prometheus scrapes /metrics here (nomad/README.md), off the public ports.
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

    service {
      name     = "ytcaption-edge-connect"
      port     = "connect"
      provider = "consul"

      check {
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "edge" {
      driver = "exec"

      artifact {
        source      = "${var.release_url}/ytcaption-edge"
        mode        = "file"
        destination = "local/ytcaption-edge"
      }

      config {
        command = "local/ytcaption-edge"
      }

      env {
        YTCAPTION_EDGE_ADDR            = ":${NOMAD_PORT_http}"
        YTCAPTION_EDGE_CONNECT_ADDR    = ":${NOMAD_PORT_connect}"
        YTCAPTION_EDGE_METRICS_ADDR    = ":${NOMAD_PORT_metrics}"
        YTCAPTION_EDGE_LOG_FORMAT      = "json"
        YTCAPTION_EDGE_TRUSTED_PROXIES = var.trusted_proxies
      }

      # Secrets from Nomad Variables at nomad/jobs/ytcaption-edge; core's
      # address from Consul (a healthy instance, re-rendered as they change).
      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/ytcaption-edge" }}
          YTCAPTION_EDGE_SERVICE_TOKEN={{ .service_token }}
          YTCAPTION_EDGE_REDIS_URL={{ .redis_url }}
          {{ end }}
          {{ range $i, $s := service "ytcaption-core" }}{{ if eq $i 0 }}YTCAPTION_EDGE_CORE_URL=http://{{ $s.Address }}:{{ $s.Port }}{{ end }}{{ end }}
        EOT
        destination = "secrets/edge.env"
        env         = true
        change_mode = "restart"
      }

      # Requests in flight finish (the shutdown waits up to 30s). Above Nomad's
      # default cap of 30s: the edge clients raise max_kill_timeout
      # (clients/edge.hcl).
      kill_timeout = "35s"

      resources {
        cpu    = 1000
        memory = 256
      }
    }
  }
}
