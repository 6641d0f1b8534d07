# consul config write consul/config/edge.service-defaults.hcl
Kind     = "service-defaults"
Name     = "ytcaption-edge"
Protocol = "http"
