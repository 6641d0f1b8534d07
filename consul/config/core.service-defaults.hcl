# consul config write consul/config/core.service-defaults.hcl
Kind     = "service-defaults"
Name     = "ytcaption-core"
Protocol = "http"
