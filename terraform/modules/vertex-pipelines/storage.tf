# The pipeline root (KFP run artifacts) and the model registry share one bucket
# under separate prefixes, so lifecycle rules can expire runs but never models.

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

# The storage service agent must be able to use the key before the bucket can.
resource "google_kms_crypto_key_iam_member" "gcs_cmek" {
  count = local.use_cmek ? 1 : 0

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_bucket" "pipeline_root" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (data access) for the project; a second log bucket per environment is left to the organisation's logging setup.
  name          = local.bucket_name
  project       = var.project_id
  location      = var.region
  storage_class = "STANDARD"
  labels        = local.labels
  force_destroy = var.force_destroy

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = 604800
  }

  dynamic "encryption" {
    for_each = local.use_cmek ? [var.kms_key_name] : []
    content {
      default_kms_key_name = encryption.value
    }
  }

  lifecycle_rule {
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
    condition {
      age                   = var.nearline_after_days
      matches_storage_class = ["STANDARD"]
    }
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.run_artifact_retention_days > 0 ? [var.run_artifact_retention_days] : []
    content {
      action {
        type = "Delete"
      }
      condition {
        age            = lifecycle_rule.value
        matches_prefix = ["${var.pipeline_root_prefix}/"]
        with_state     = "LIVE"
      }
    }
  }

  depends_on = [google_project_service.this, google_kms_crypto_key_iam_member.gcs_cmek]
}
