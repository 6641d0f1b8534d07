# Nomad agent configuration for the control nodes that run core: merge it into
# each client's configuration (for example /etc/nomad.d/client.hcl) and
# restart the agent.
#
# Nomad cuts every task's kill_timeout to its client's max_kill_timeout, 30s
# when unset; core's is 35s (its shutdown waits up to 30s for the calls in
# flight, and margin).
client {
  enabled          = true
  node_class       = "control"
  max_kill_timeout = "1m"
}
