# consul acl policy create -name ytcaption-gpu-node -rules @consul/acl/gpu-node.hcl
# A gpu-node registers itself and looks up healthy core instances.
service "ytcaption-gpu-node" {
  policy = "write"
}

service "ytcaption-core" {
  policy = "read"
}

node_prefix "" {
  policy = "read"
}
