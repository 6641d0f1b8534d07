# consul acl policy create -name ytcaption-core -rules @consul/acl/core.hcl
# Core registers itself and reads the catalog.
service "ytcaption-core" {
  policy = "write"
}

service_prefix "" {
  policy = "read"
}

node_prefix "" {
  policy = "read"
}

# Dynamic settings: core watches its keys (see consul/README.md); operators
# write them with their own tokens.
key_prefix "ytcaption/core/" {
  policy = "read"
}
