# consul config write consul/config/core.intentions.hcl
# Only the edge (job calls) and the gpu-nodes (work) may call core.
Kind = "service-intentions"
Name = "ytcaption-core"

Sources = [
  {
    Name   = "ytcaption-edge"
    Action = "allow"
  },
  {
    Name   = "ytcaption-gpu-node"
    Action = "allow"
  },
]
