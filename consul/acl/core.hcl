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
