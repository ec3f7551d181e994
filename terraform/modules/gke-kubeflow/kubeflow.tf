# Kubeflow Pipelines (standalone, single-user) from the upstream kustomize
# manifests at a pinned release tag. kustomization_resource applies objects in
# three passes (CRDs and namespaces, then the rest, then webhooks), so one
# terraform apply installs it without a kubectl step.

data "kustomization_overlay" "kfp_cluster" {
  resources = [
    "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=${var.kfp_version}",
  ]
}

data "kustomization_overlay" "kfp" {
  resources = [
    "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=${var.kfp_version}",
  ]
}

resource "kustomization_resource" "kfp_cluster" {
  for_each = data.kustomization_overlay.kfp_cluster.ids

  manifest = data.kustomization_overlay.kfp_cluster.manifests[each.value]

  depends_on = [google_container_node_pool.cpu]
}

resource "kustomization_resource" "kfp_crds" {
  for_each = data.kustomization_overlay.kfp.ids_prio[0]

  manifest = data.kustomization_overlay.kfp.manifests[each.value]

  depends_on = [kustomization_resource.kfp_cluster]
}

resource "kustomization_resource" "kfp_namespaced" {
  for_each = data.kustomization_overlay.kfp.ids_prio[1]

  manifest = data.kustomization_overlay.kfp.manifests[each.value]

  depends_on = [kustomization_resource.kfp_crds]
}

resource "kustomization_resource" "kfp_webhooks" {
  for_each = data.kustomization_overlay.kfp.ids_prio[2]

  manifest = data.kustomization_overlay.kfp.manifests[each.value]

  depends_on = [kustomization_resource.kfp_namespaced]
}
