# The bucket core keeps audio, uploads and transcripts' sources in, with a
# lifecycle rule as the second line behind core's retention sweeper: the
# sweeper deletes audio after --audio-retention (7 days) and knows which blobs
# jobs still share; this rule only catches what it missed, so it must be
# longer. Provider: aminueza/minio (declared in main.tf). Not validated here
# (providers cannot be downloaded on the build machines); `terraform
# validate` it before use.

variable "bucket" {
  type    = string
  default = "ytcaption"
}

variable "audio_expiry_days" {
  description = "Backstop expiry of audio/ and uploads/ objects; longer than core's --audio-retention."
  type        = number
  default     = 30
}

resource "minio_s3_bucket" "ytcaption" {
  bucket = var.bucket
}

resource "minio_ilm_policy" "ytcaption" {
  bucket = minio_s3_bucket.ytcaption.bucket

  rule {
    id         = "audio-backstop"
    expiration = "${var.audio_expiry_days}d"
    filter     = "audio/"
  }

  rule {
    id         = "uploads-backstop"
    expiration = "${var.audio_expiry_days}d"
    filter     = "uploads/"
  }
}

output "bucket" {
  value = minio_s3_bucket.ytcaption.bucket
}
