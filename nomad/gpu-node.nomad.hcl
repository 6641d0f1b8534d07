# ytcaption gpu-node: the agent on every GPU-class host, holding one GPU, and
# optionally an OpenAI-compatible engine server (speaches, vLLM, whisper.cpp's
# server) beside it on the same GPU. Agents pull work from core; they need no
# inbound port except metrics.

variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

variable "release_url" {
  description = "Where the release binaries are downloaded from (<release_url>/ytcaption-gpu-node)."
  type        = string
}

variable "engine" {
  description = "The agent's engine: sphinx, openai or whispercpp."
  type        = string
  default     = "openai"
}

variable "engine_server_command" {
  description = "An OpenAI-compatible server to run beside the agent (empty: none; the engine is elsewhere)."
  type        = string
  default     = ""
}

variable "engine_server_args" {
  type    = list(string)
  default = []
}

job "ytcaption-gpu-node" {
  type        = "system"
  datacenters = var.datacenters

  constraint {
    attribute = "${node.class}"
    value     = "gpu"
  }

  update {
    max_parallel = 1
    stagger      = "1m"
  }

  group "gpu-node" {
    network {
      port "metrics" {}
      port "engine" {}
    }

    service {
      name     = "ytcaption-gpu-node"
      port     = "metrics"
      provider = "consul"

      check {
        type     = "http"
        path     = "/metrics"
        interval = "30s"
        timeout  = "2s"
      }
    }

    task "agent" {
      driver = "exec"

      artifact {
        source      = "${var.release_url}/ytcaption-gpu-node"
        mode        = "file"
        destination = "local/ytcaption-gpu-node"
      }

      config {
        command = "local/ytcaption-gpu-node"
      }

      env {
        YTCAPTION_GPU_NODE_ENGINE          = var.engine
        YTCAPTION_GPU_NODE_NODE_ID         = "${node.unique.name}"
        YTCAPTION_GPU_NODE_METRICS_ADDR    = ":${NOMAD_PORT_metrics}"
        YTCAPTION_GPU_NODE_WORK_DIR        = "${NOMAD_TASK_DIR}/work"
        YTCAPTION_GPU_NODE_OPENAI_BASE_URL = "http://127.0.0.1:${NOMAD_PORT_engine}"
        YTCAPTION_GPU_NODE_LOG_FORMAT      = "json"
      }

      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/ytcaption-gpu-node" }}YTCAPTION_GPU_NODE_NODE_TOKEN={{ .node_token }}{{ end }}
          {{ range $i, $s := service "ytcaption-core" }}{{ if eq $i 0 }}YTCAPTION_GPU_NODE_CORE_URL=http://{{ $s.Address }}:{{ $s.Port }}{{ end }}{{ end }}
        EOT
        destination = "secrets/agent.env"
        env         = true
        change_mode = "restart"
      }

      # The first SIGTERM drains: the current job finishes. Give the longest
      # job its time (see the README's drain notes) before a second signal.
      kill_signal  = "SIGTERM"
      kill_timeout = "30m"

      resources {
        cpu    = 1000
        memory = 1024

        device "nvidia/gpu" {
          count = 1
        }
      }
    }

    dynamic "task" {
      for_each = var.engine_server_command == "" ? [] : [var.engine_server_command]
      labels   = ["engine-server"]

      content {
        driver = "exec"

        lifecycle {
          hook    = "prestart"
          sidecar = true
        }

        config {
          command = task.value
          args    = var.engine_server_args
        }

        env {
          PORT = "${NOMAD_PORT_engine}"
        }

        resources {
          cpu    = 2000
          memory = 8192
        }
      }
    }
  }
}
