# dev: Vertex AI Pipelines and a small zonal GKE cluster with Kubeflow
# Pipelines + KServe, sharing one bucket, one image repository and one runner identity.

locals {
  environment = "dev"
  labels      = merge({ env = local.environment }, var.labels)
}

module "vertex" {
  source = "../../modules/vertex-pipelines"

  project_id                  = var.project_id
  region                      = var.region
  name_prefix                 = "kubepipe-dev"
  labels                      = local.labels
  force_destroy               = true
  run_artifact_retention_days = 30
  github_repository           = var.github_repository
}

module "gke" {
  source = "../../modules/gke-kubeflow"

  project_id                     = var.project_id
  region                         = var.region
  location                       = var.zone
  cluster_name                   = "kubepipe-dev"
  labels                         = merge({ env = "dev" }, var.labels)
  deletion_protection            = false
  release_channel                = "REGULAR"
  master_authorized_networks     = var.master_authorized_networks
  cpu_machine_type               = "e2-standard-4"
  cpu_min_nodes                  = 1
  cpu_max_nodes                  = 3
  gpu_machine_type               = var.gpu_machine_type
  gpu_accelerator_type           = var.gpu_accelerator_type
  gpu_max_nodes                  = 1
  gpu_spot                       = true
  workload_service_account_email = module.vertex.runner_service_account_email
  deployer_service_account_email = module.vertex.deployer_service_account_email
  kfp_host                       = var.kfp_host
  image_repository = {
    location   = var.region
    repository = module.vertex.image_repository_id
  }
}
