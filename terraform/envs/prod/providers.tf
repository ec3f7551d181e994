provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}

locals {
  cluster_host = "https://${module.gke.cluster_endpoint}"
  cluster_ca   = base64decode(module.gke.cluster_ca_certificate)

  # Short-lived token of whoever runs terraform; nothing is written to disk.
  kubeconfig = yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    current-context = "kubepipe"
    clusters        = [{ name = "kubepipe", cluster = { server = local.cluster_host, certificate-authority-data = module.gke.cluster_ca_certificate } }]
    users           = [{ name = "terraform", user = { token = data.google_client_config.current.access_token } }]
    contexts        = [{ name = "kubepipe", context = { cluster = "kubepipe", user = "terraform" } }]
  })
}

provider "kubernetes" {
  host                   = local.cluster_host
  cluster_ca_certificate = local.cluster_ca
  token                  = data.google_client_config.current.access_token
}

provider "helm" {
  kubernetes {
    host                   = local.cluster_host
    cluster_ca_certificate = local.cluster_ca
    token                  = data.google_client_config.current.access_token
  }
}

provider "kustomization" {
  kubeconfig_raw = local.kubeconfig
}
