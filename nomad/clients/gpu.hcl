# Nomad agent configuration for GPU hosts: merge it into each GPU client's
# configuration (for example /etc/nomad.d/client.hcl) and restart the agent.
#
# Nomad cuts every task's kill_timeout to its client's max_kill_timeout, 30s
# when unset. The gpu-node's first SIGTERM drains it and the job in hand gets
# its kill_timeout to finish: --max-duration (4h), the longest media core
# accepts, which every engine transcribes faster than real time. Under the
# default cap a stopped or drained node kills that job half-way.
client {
  enabled          = true
  node_class       = "gpu"
  max_kill_timeout = "4h"
}

# NVIDIA GPUs as the device "nvidia/gpu": the nomad-device-nvidia plugin,
# installed in the agent's plugin_dir.
plugin "nomad-device-nvidia" {
  config {
    enabled = true
  }
}
