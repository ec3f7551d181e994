terraform {
  required_version = ">= 1.6"

  # The kubernetes, helm and kustomization providers are configured by the
  # calling environment from this module's cluster outputs (see envs/*/providers.tf).
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
