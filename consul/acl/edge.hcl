# consul acl policy create -name ytcaption-edge -rules @consul/acl/edge.hcl
# The edge registers itself and looks up healthy core instances.
service "ytcaption-edge" {
  policy = "write"
}

service "ytcaption-core" {
  policy = "read"
}

node_prefix "" {
  policy = "read"
}
