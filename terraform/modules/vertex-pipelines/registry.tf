# Docker repository for the kubepipe runtime images. Tags are immutable: a
# profile pins the image by digest, and a tag can never be moved under it.

resource "google_kms_crypto_key_iam_member" "artifact_registry_cmek" {
  count = local.use_cmek ? 1 : 0

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:CMEK is opt-in through var.kms_key_name (set in envs/prod); Google-managed encryption is the default for dev.
  project       = var.project_id
  location      = var.region
  repository_id = var.image_repository_id
  description   = "kubepipe runtime images (CPU and CUDA), referenced by digest from target profiles."
  format        = "DOCKER"
  labels        = local.labels
  kms_key_name  = var.kms_key_name

  docker_config {
    immutable_tags = true
  }

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.untagged_image_retention_days * 86400}s"
    }
  }

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_recent_image_versions
    }
  }

  depends_on = [google_project_service.this, google_kms_crypto_key_iam_member.artifact_registry_cmek]
}
