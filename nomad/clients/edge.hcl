# Nomad agent configuration for the edge nodes behind the load balancer: merge
# it into each client's configuration (for example /etc/nomad.d/client.hcl)
# and restart the agent.
#
# Nomad cuts every task's kill_timeout to its client's max_kill_timeout, 30s
# when unset; the edge's is 35s (its shutdown waits up to 30s for the requests
# in flight, and margin).
client {
  enabled          = true
  node_class       = "edge"
  max_kill_timeout = "1m"
}
