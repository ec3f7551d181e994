# KServe from its Helm charts at a pinned version, with cert-manager for the
# admission webhooks' certificates.

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.cert_manager_version
  namespace        = "cert-manager"
  create_namespace = true
  atomic           = true
  timeout          = 900

  set {
    name  = "crds.enabled"
    value = "true"
  }

  depends_on = [google_container_node_pool.cpu]
}

resource "helm_release" "kserve_crd" {
  name             = "kserve-crd"
  repository       = var.kserve_chart_repository
  chart            = "kserve-crd"
  version          = var.kserve_version
  namespace        = "kserve"
  create_namespace = true
  atomic           = true

  depends_on = [helm_release.cert_manager]
}

resource "helm_release" "kserve" {
  name       = "kserve"
  repository = var.kserve_chart_repository
  chart      = "kserve"
  version    = var.kserve_version
  namespace  = helm_release.kserve_crd.namespace
  atomic     = true
  timeout    = 900

  # Each InferenceService kubepipe renders names its mode in an annotation; this is the default.
  # KServe 0.16+ also calls the modes Standard / Knative and accepts the older names.
  set {
    name  = "kserve.controller.deploymentMode"
    value = var.kserve_deployment_mode == "raw" ? "RawDeployment" : "Serverless"
  }

  dynamic "set" {
    for_each = var.kserve_extra_values
    content {
      name  = set.key
      value = set.value
    }
  }

  depends_on = [helm_release.kserve_crd]
}
