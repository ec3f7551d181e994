locals {
  runtime_image = (var.runtime_image_digest == null
    ? "${module.vertex.image_repository}/kubepipe-runtime:${var.image_tag}"
  : "${module.vertex.image_repository}/kubepipe-runtime@${var.runtime_image_digest}")

  # The two targets name a GPU differently (NVIDIA_L4 on Vertex, nvidia-l4 on GKE): one map per profile.
  gpu_types = {
    vertex   = { for name, gpu in var.gpu_types : name => gpu.vertex }
    kubeflow = { for name, gpu in var.gpu_types : name => gpu.gke }
  }

  profile_common = {
    environment            = local.environment
    image_repository       = module.vertex.image_repository
    pipeline_root          = module.vertex.pipeline_root
    runtime_image          = local.runtime_image
    registry_uri           = module.vertex.registry_uri
    experiment             = "kubepipe-${local.environment}"
    labels                 = local.labels
    host                   = null
    namespace              = null
    deploy_namespace       = null
    deploy_service_account = null
    deployment_mode        = null
    project                = null
    region                 = null
    service_account        = null
    network                = null
    encryption_key         = null
  }
}

output "vertex_profile" {
  description = "configs/vertex.yaml for this environment (terraform output -raw vertex_profile > configs/vertex.yaml)."
  value = templatefile("${path.module}/../../templates/profile.yaml.tftpl", merge(local.profile_common, {
    target          = "vertex"
    gpu_types       = local.gpu_types.vertex
    project         = module.vertex.project_id
    region          = module.vertex.region
    service_account = module.vertex.runner_service_account_email
    network         = module.vertex.network
    encryption_key  = google_kms_crypto_key.kubepipe.id
  }))
}

output "kubeflow_profile" {
  description = "configs/kubeflow.yaml for this environment (terraform output -raw kubeflow_profile > configs/kubeflow.yaml)."
  value = templatefile("${path.module}/../../templates/profile.yaml.tftpl", merge(local.profile_common, {
    target           = "kubeflow"
    gpu_types        = local.gpu_types.kubeflow
    host             = module.gke.kfp_host
    namespace        = "kubeflow"
    deploy_namespace = module.gke.namespace
    # the serving namespace's Workload Identity account: the storage initializer reads the model bucket as it
    deploy_service_account = module.gke.kubernetes_service_account
    deployment_mode        = module.gke.deployment_mode
  }))
}

output "image_repository" {
  description = "Registry path for `kubepipe image --registry`."
  value       = module.vertex.image_repository
}

output "deployer_service_account_email" {
  description = "Service account for the GitHub workflows (repository variable GCP_SERVICE_ACCOUNT)."
  value       = module.vertex.deployer_service_account_email
}

output "workload_identity_provider" {
  description = "Provider for google-github-actions/auth (repository variable GCP_WORKLOAD_IDENTITY_PROVIDER)."
  value       = module.vertex.workload_identity_provider
}

output "get_credentials_command" {
  description = "kubectl credentials for the prod cluster."
  value       = module.gke.get_credentials_command
}
