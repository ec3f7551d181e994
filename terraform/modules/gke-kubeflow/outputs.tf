output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = google_container_cluster.this.name
}

output "cluster_location" {
  description = "Region or zone of the cluster."
  value       = google_container_cluster.this.location
}

output "cluster_endpoint" {
  description = "Control-plane endpoint (IP) for the kubernetes and helm providers."
  value       = google_container_cluster.this.endpoint
  sensitive   = true
}

output "cluster_ca_certificate" {
  description = "Base64 CA certificate of the control plane."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
  sensitive   = true
}

output "get_credentials_command" {
  description = "Command that writes a kubeconfig entry for this cluster."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.this.name} --location ${google_container_cluster.this.location} --project ${var.project_id}"
}

output "deployment_mode" {
  description = "KServe deployment mode in profile terms (raw or serverless)."
  value       = var.kserve_deployment_mode
}

output "namespace" {
  description = "Namespace kubepipe deploys InferenceServices into (the profile's deploy_namespace)."
  value       = kubernetes_namespace_v1.kubepipe.metadata[0].name
}

output "kubernetes_service_account" {
  description = "Kubernetes service account bound to the runner's Google service account."
  value       = kubernetes_service_account_v1.runner.metadata[0].name
}

output "kfp_host" {
  description = "KFP API address for the kubeflow target profile."
  value       = var.kfp_host
}

output "gpu_accelerator_type" {
  description = "GKE accelerator type of the GPU pool (the node label cloud.google.com/gke-accelerator)."
  value       = var.gpu_accelerator_type
}

output "network_id" {
  description = "VPC network of the cluster."
  value       = google_compute_network.this.id
}
