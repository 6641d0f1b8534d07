# ytcaption gpu-node: the agent on every GPU-class host, and optionally an
# OpenAI-compatible engine server (speaches, vLLM, whisper.cpp's server) beside
# it. One GPU per host, held by the task that runs the engine: the server when
# there is one, the agent otherwise. Agents pull work from core; they need no
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
  description = "An OpenAI-compatible server to run beside the agent, on the host's GPU (empty: none; the engine is elsewhere, at engine_base_url)."
  type        = string
  default     = ""
}

variable "engine_server_args" {
  type    = list(string)
  default = []
}

variable "engine_base_url" {
  description = "The OpenAI-compatible server the openai engine calls when none runs beside the agent (empty: the server beside it; with neither, the agent refuses to start)."
  type        = string
  default     = ""
}

variable "openai_models" {
  description = "Models jobs may ask the OpenAI-compatible server for, comma-separated, the first the default (--openai-models; empty: the agent's default)."
  type        = string
  default     = ""
}

variable "openai_vad_filter" {
  description = "Ask the OpenAI-compatible server to skip non-speech (vad_filter=true) for jobs with the silence guard (--openai-vad-filter): speaches and faster-whisper-server take it; OpenAI's own API refuses it."
  type        = bool
  default     = false
}

variable "whispercpp_models_dir" {
  description = "Directory of whisper.cpp ggml models jobs may name, as the task sees it (--whispercpp-models-dir); the exec driver's default chroot shows /usr, e.g. /usr/local/share/whisper.cpp/models."
  type        = string
  default     = ""
}

variable "whispercpp_model" {
  description = "The default whisper.cpp model, a name in whispercpp_models_dir (--whispercpp-model)."
  type        = string
  default     = ""
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

    # Leave Consul's catalog before the drain starts: Prometheus stops
    # scraping a node that is going away.
    shutdown_delay = "5s"

    service {
      name     = "ytcaption-gpu-node"
      port     = "metrics"
      provider = "consul"

      meta {
        metrics_port = "${NOMAD_PORT_metrics}"
      }

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

      # Empty values leave the agent's defaults.
      env {
        YTCAPTION_GPU_NODE_ENGINE       = var.engine
        YTCAPTION_GPU_NODE_NODE_ID      = "${node.unique.name}"
        YTCAPTION_GPU_NODE_METRICS_ADDR = ":${NOMAD_PORT_metrics}"
        YTCAPTION_GPU_NODE_WORK_DIR     = "${NOMAD_TASK_DIR}/work"
        YTCAPTION_GPU_NODE_LOG_FORMAT   = "json"
        # engine_base_url, else the server beside the agent, else nothing:
        # never a port where nothing listens.
        YTCAPTION_GPU_NODE_OPENAI_BASE_URL       = var.engine_base_url != "" ? var.engine_base_url : (var.engine_server_command != "" ? "http://127.0.0.1:${NOMAD_PORT_engine}" : "")
        YTCAPTION_GPU_NODE_OPENAI_MODELS         = var.openai_models
        YTCAPTION_GPU_NODE_OPENAI_VAD_FILTER     = var.openai_vad_filter ? "true" : "false"
        YTCAPTION_GPU_NODE_WHISPERCPP_MODELS_DIR = var.whispercpp_models_dir
        YTCAPTION_GPU_NODE_WHISPERCPP_MODEL      = var.whispercpp_model
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

      # The first SIGTERM drains: the current job finishes. It gets the
      # longest a job takes, --max-duration (4h: the longest media core
      # accepts, every engine faster than real time), before Nomad kills it.
      # Nomad caps this at the client's max_kill_timeout, 30s by default: GPU
      # clients raise it to 4h (clients/gpu.hcl). A drain stops this task at
      # once (system jobs go last; nothing else runs here), so this is also
      # the time a drained node's job has, whatever the drain's deadline.
      kill_signal  = "SIGTERM"
      kill_timeout = "4h"

      resources {
        cpu    = 1000
        memory = 1024

        # The GPU is the engine's: the agent's when it runs the engine itself,
        # the server's when one runs beside it. Devices are per task.
        dynamic "device" {
          for_each = var.engine_server_command == "" ? ["nvidia/gpu"] : []
          labels   = [device.value]

          content {
            count = 1
          }
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

          device "nvidia/gpu" {
            count = 1
          }
        }
      }
    }
  }
}
