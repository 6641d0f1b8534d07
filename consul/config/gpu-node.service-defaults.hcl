# consul config write consul/config/gpu-node.service-defaults.hcl
Kind     = "service-defaults"
Name     = "ytcaption-gpu-node"
Protocol = "http"
