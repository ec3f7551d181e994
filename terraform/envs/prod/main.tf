# prod: the same platform as dev, hardened: regional control plane, deletion
# protection, STABLE channel, on-demand GPUs, longer retention and CMEK keys
# (Cloud KMS, rotated every 90 days) for the bucket, the images, GKE Secrets,
# node disks and Vertex AI pipeline jobs.

locals {
  environment = "prod"
  labels      = merge({ env = local.environment }, var.labels)
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "kms" {
  project            = var.project_id
  service            = "cloudkms.googleapis.com"
  disable_on_destroy = false
}

resource "google_kms_key_ring" "kubepipe" {
  project  = var.project_id
  name     = "kubepipe-prod"
  location = var.region

  depends_on = [google_project_service.kms]
}

resource "google_kms_crypto_key" "kubepipe" {
  name            = "kubepipe-prod"
  key_ring        = google_kms_key_ring.kubepipe.id
  rotation_period = "7776000s"
  purpose         = "ENCRYPT_DECRYPT"
  labels          = local.labels

  lifecycle {
    prevent_destroy = true
  }
}

# Google service agents that encrypt on our behalf (GCS and Artifact Registry are granted in the module).
resource "google_kms_crypto_key_iam_member" "service_agents" {
  for_each = toset([
    "service-${data.google_project.this.number}@container-engine-robot.iam.gserviceaccount.com",
    "service-${data.google_project.this.number}@compute-system.iam.gserviceaccount.com",
    "service-${data.google_project.this.number}@gcp-sa-aiplatform.iam.gserviceaccount.com",
  ])

  crypto_key_id = google_kms_crypto_key.kubepipe.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${each.value}"
}

locals {
  # Read through the grants, so that nothing encrypts with the key before the service agents may use it.
  kms_key_granted = google_kms_crypto_key_iam_member.service_agents["service-${data.google_project.this.number}@container-engine-robot.iam.gserviceaccount.com"].crypto_key_id
}

module "vertex" {
  source = "../../modules/vertex-pipelines"

  project_id                        = var.project_id
  region                            = var.region
  name_prefix                       = "kubepipe"
  labels                            = local.labels
  force_destroy                     = false
  run_artifact_retention_days       = 365
  noncurrent_version_retention_days = 90
  kms_key_name                      = google_kms_crypto_key.kubepipe.id
  github_repository                 = var.github_repository

  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

module "gke" {
  source = "../../modules/gke-kubeflow"

  project_id                     = var.project_id
  region                         = var.region
  location                       = var.region
  cluster_name                   = "kubepipe-prod"
  labels                         = merge({ env = "prod" }, var.labels)
  deletion_protection            = true
  release_channel                = "STABLE"
  master_authorized_networks     = var.master_authorized_networks
  kms_key_name                   = local.kms_key_granted
  cpu_machine_type               = "e2-standard-8"
  cpu_min_nodes                  = 1
  cpu_max_nodes                  = 5
  gpu_machine_type               = var.gpu_machine_type
  gpu_accelerator_type           = var.gpu_accelerator_type
  gpu_node_locations             = var.gpu_zones
  gpu_max_nodes                  = var.gpu_max_nodes
  gpu_spot                       = false
  workload_service_account_email = module.vertex.runner_service_account_email
  deployer_service_account_email = module.vertex.deployer_service_account_email
  kfp_host                       = var.kfp_host
  image_repository = {
    location   = var.region
    repository = module.vertex.image_repository_id
  }
}
