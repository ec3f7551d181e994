terraform {
  required_version = ">= 1.6"

  # State lives in a GCS bucket created once by hand (or a bootstrap stack):
  #   terraform init -backend-config="bucket=<state-bucket>" -backend-config="prefix=kubepipe/prod"
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14, < 8.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.35"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
    kustomization = {
      source  = "kbst/kustomization"
      version = "~> 0.9"
    }
  }
}
