# Nomad Autoscaler cluster-scaling policy for the GPU node pool: as many GPU
# hosts as the queue needs, from core's queue-depth metric. The pass-through
# strategy takes the query's value as the target count, so the query does the
# arithmetic: one host per four jobs waiting or running. Bare-metal fleets
# without a provisioning API cannot scale; point "target" at your provider's
# plugin (aws-asg here) where they can.

scaling "gpu_nodes" {
  enabled = true
  min     = 1
  max     = 20

  policy {
    cooldown            = "10m"
    evaluation_interval = "1m"

    check "queue_depth" {
      source = "prometheus"
      query  = "ceil(sum(ytcaption_core_queue_depth{state=~\"ready|transcribing\"}) / 4)"

      # At most 2 hosts more, or 1 fewer, per scaling action.
      strategy "pass-through" {
        max_scale_up   = 2
        max_scale_down = 1
      }
    }

    # A scale-in drains the host: the gpu-node (a system job, stopped last:
    # at once, as nothing else runs there) gets its first SIGTERM and
    # kill_timeout, --max-duration (4h), to finish the job in hand. The
    # deadline is the same 4h, as core's admin drain uses, and the host is
    # terminated only once the gpu-node has stopped (system jobs not ignored).
    target "aws-asg" {
      dry-run                       = "false"
      aws_asg_name                  = "ytcaption-gpu"
      node_class                    = "gpu"
      node_drain_deadline           = "4h"
      node_drain_ignore_system_jobs = "false"
      node_purge                    = "true"
    }
  }
}
