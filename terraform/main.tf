# ytcaption on a Nomad + Consul cluster: the Nomad Variables the jobs read,
# the three jobs from ../nomad, and Consul's config entries and ACL policies
# from ../consul. Providers: hashicorp/nomad, hashicorp/consul (and
# aminueza/minio in minio.tf). They cannot be downloaded on the build
# machines, so this is parse- and format-checked only; run `terraform
# validate` before use.

terraform {
  required_providers {
    nomad = {
      source  = "hashicorp/nomad"
      version = ">= 2.0"
    }
    consul = {
      source  = "hashicorp/consul"
      version = ">= 2.20"
    }
    minio = {
      source  = "aminueza/minio"
      version = ">= 2.0"
    }
  }
}

variable "release_url" {
  description = "Where the nodes download the ytcaption binaries from."
  type        = string
}

variable "postgres_url" {
  type      = string
  sensitive = true
}

variable "redis_url" {
  type = string
}

variable "s3" {
  description = "The blob store core uses (MinIO or S3)."
  type = object({
    endpoint   = string
    access_key = string
    secret_key = string
  })
  sensitive = true
}

variable "service_token" {
  description = "What the edge presents to core."
  type        = string
  sensitive   = true
}

variable "node_token" {
  description = "What gpu-nodes present to core."
  type        = string
  sensitive   = true
}

variable "core_nomad_token" {
  description = "Nomad ACL token core uses for the admin fleet view and GPU node drains (node:read, node:write); empty without ACLs."
  type        = string
  default     = ""
  sensitive   = true
}

variable "core_yt_dlp_proxies" {
  description = "Outbound proxies yt-dlp's downloads take in turn, comma-separated URLs (http, https, socks5; credentials allowed); empty: direct. docs/staying-unblocked.md."
  type        = string
  default     = ""
  sensitive   = true
}

variable "gpu_node_job_vars" {
  description = "Variables of ../nomad/gpu-node.nomad.hcl besides release_url: engine, engine_base_url, engine_server_command, engine_server_args (HCL list syntax), openai_models, openai_vad_filter, whispercpp_models_dir, whispercpp_model."
  type        = map(string)
  default     = {}
}

variable "core_tools" {
  description = "The yt-dlp and Deno releases core's prestart task fetches, each an https URL and the SHA-256 its release publishes (docs/yt-dlp.md)."
  type = object({
    yt_dlp_url    = string
    yt_dlp_sha256 = string
    deno_url      = string
    deno_sha256   = string
  })
}

resource "nomad_variable" "core" {
  path = "nomad/jobs/ytcaption-core"
  items = {
    postgres_url   = var.postgres_url
    s3_endpoint    = var.s3.endpoint
    s3_access_key  = var.s3.access_key
    s3_secret_key  = var.s3.secret_key
    s3_bucket      = minio_s3_bucket.ytcaption.bucket
    service_token  = var.service_token
    node_tokens    = var.node_token
    nomad_token    = var.core_nomad_token
    yt_dlp_proxies = var.core_yt_dlp_proxies
  }
}

# Its own path, the prestart task's (job/group/task): its workload identity
# reads it without an ACL policy.
resource "nomad_variable" "core_tools" {
  path = "nomad/jobs/ytcaption-core/core/tools"
  items = {
    yt_dlp_url    = var.core_tools.yt_dlp_url
    yt_dlp_sha256 = var.core_tools.yt_dlp_sha256
    deno_url      = var.core_tools.deno_url
    deno_sha256   = var.core_tools.deno_sha256
  }
}

resource "nomad_variable" "edge" {
  path = "nomad/jobs/ytcaption-edge"
  items = {
    service_token = var.service_token
    redis_url     = var.redis_url
  }
}

resource "nomad_variable" "gpu_node" {
  path = "nomad/jobs/ytcaption-gpu-node"
  items = {
    node_token = var.node_token
  }
}

resource "nomad_job" "core" {
  jobspec = file("${path.module}/../nomad/core.nomad.hcl")
  hcl2 {
    vars = { release_url = var.release_url }
  }
  depends_on = [nomad_variable.core, nomad_variable.core_tools]
}

resource "nomad_job" "edge" {
  jobspec = file("${path.module}/../nomad/edge.nomad.hcl")
  hcl2 {
    vars = { release_url = var.release_url }
  }
  depends_on = [nomad_variable.edge, nomad_job.core]
}

resource "nomad_job" "gpu_node" {
  jobspec = file("${path.module}/../nomad/gpu-node.nomad.hcl")
  hcl2 {
    vars = merge(var.gpu_node_job_vars, { release_url = var.release_url })
  }
  depends_on = [nomad_variable.gpu_node, nomad_job.core]
}

# Consul: the same entries as ../consul/config, as the provider takes them.
resource "consul_config_entry" "service_defaults" {
  for_each    = toset(["ytcaption-core", "ytcaption-edge", "ytcaption-gpu-node"])
  kind        = "service-defaults"
  name        = each.key
  config_json = jsonencode({ Protocol = "http" })
}

resource "consul_config_entry" "core_intentions" {
  kind = "service-intentions"
  name = "ytcaption-core"
  config_json = jsonencode({
    Sources = [
      { Name = "ytcaption-edge", Action = "allow" },
      { Name = "ytcaption-gpu-node", Action = "allow" },
    ]
  })
}

resource "consul_config_entry" "default_deny" {
  kind = "service-intentions"
  name = "*"
  config_json = jsonencode({
    Sources = [{ Name = "*", Action = "deny" }]
  })
}

resource "consul_acl_policy" "service" {
  for_each = toset(["core", "edge", "gpu-node"])
  name     = "ytcaption-${each.key}"
  rules    = file("${path.module}/../consul/acl/${each.key}.hcl")
}

output "nomad_jobs" {
  value = [nomad_job.core.id, nomad_job.edge.id, nomad_job.gpu_node.id]
}
