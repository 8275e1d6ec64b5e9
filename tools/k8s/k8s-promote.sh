#!/usr/bin/env bash
# Blue/green release on Kubernetes (deploy/k8s/), the four steps of tools/promote.sh
# with Services in place of Nginx:
#   1. apply the next colour (deploy/k8s/overlays/<colour>), scale it to the live
#      colour's replica count, wait for the rollout (every pod ready)
#   2. smoke-test it through wschat-preview, from a one-shot pod in the namespace
#      (tools/k8s/k8s-smoke.ts): /readyz, /version on fresh connections, and a session
#      started on the live colour counting on in the new one
#   3. flip: patch wschat-active's selector to the new colour (wschat-preview gets
#      the old one), then check /version through wschat-active five times in a row
#   4. retire the old colour: scale it to 0. Its pods leave the endpoints at once
#      (they already had with the flip), pause in preStop, get SIGTERM and drain:
#      bye + 1001, and the clients reconnect through the Ingress to the new colour.
#
#   tools/k8s/k8s-promote.sh [blue|green]   default: the colour that is not live
#   tools/k8s/k8s-promote.sh --rollback     back to the colour live before the last
#                                       promotion: the same steps without step 1's
#                                       apply (that colour keeps its release)
#
# Environment:
#   KUBECTL           kubectl command, flags allowed (default "kubectl"; e.g.
#                     "kubectl --context prod")
#   WSCHAT_NAMESPACE  default wschat, the namespace the kustomizations set
#   READY_TIMEOUT_S   longest wait for the rollout of step 1 (default 300)
#
# Needs the compiled tree (npm run build: dist/tools/k8s/k8s-smoke.js). Before the flip
# any failure scales the new colour back to 0 and leaves the live one untouched; a
# failed check after the flip flips back first. An annotation on wschat-active is
# the lock that refuses a second promotion while one runs.
#
# Not run on this project's machines (no cluster): checked by shellcheck, and the
# names it uses by tests/static/k8s-manifests.test.ts.
set -euo pipefail
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../stack/lib.sh"

readonly NAMESPACE=${WSCHAT_NAMESPACE:-wschat}
readonly OVERLAYS=$REPO_ROOT/deploy/k8s/overlays
readonly ACTIVE_SERVICE=wschat-active
readonly PREVIEW_SERVICE=wschat-preview
readonly DEPLOYMENT_PREFIX=wschat-
readonly COLOUR_LABEL=colour
readonly LOCK_ANNOTATION=wschat.io/promotion
# The HPA's minReplicas: never start a colour smaller than that.
readonly MIN_REPLICAS=2
readonly READY_TIMEOUT_S=${READY_TIMEOUT_S:-300}
# Past terminationGracePeriodSeconds (20 s): by then every old pod is gone.
readonly RETIRE_TIMEOUT_S=40
readonly SMOKE_SCRIPT=$REPO_ROOT/dist/tools/k8s/k8s-smoke.js

# KUBECTL may carry flags: split on whitespace on purpose.
read -r -a KUBECTL_COMMAND <<<"${KUBECTL:-kubectl}"
k() {
  "${KUBECTL_COMMAND[@]}" --namespace "$NAMESPACE" "$@"
}

other_colour() {
  if [[ $1 == blue ]]; then echo green; else echo blue; fi
}

# selected_colour SERVICE: the colour SERVICE's selector names.
selected_colour() {
  k get service "$1" -o "jsonpath={.spec.selector.$COLOUR_LABEL}"
}

# select_colour SERVICE COLOUR: points SERVICE at COLOUR's pods (a merge patch: the
# selector's other keys stay).
select_colour() {
  k patch service "$1" --type merge -p "{\"spec\":{\"selector\":{\"$COLOUR_LABEL\":\"$2\"}}}" >/dev/null
}

# flip_to COLOUR: wschat-active selects COLOUR, wschat-preview the other colour.
flip_to() {
  select_colour "$ACTIVE_SERVICE" "$1" && select_colour "$PREVIEW_SERVICE" "$(other_colour "$1")"
}

replicas_of() {
  k get deployment "$DEPLOYMENT_PREFIX$1" -o 'jsonpath={.spec.replicas}'
}

take_lock() {
  local holder
  holder=$(k get service "$ACTIVE_SERVICE" -o "jsonpath={.metadata.annotations.${LOCK_ANNOTATION//./\\.}}")
  [[ -z $holder ]] || die "a promotion is running ($holder); if none is, remove the lock: kubectl -n $NAMESPACE annotate service $ACTIVE_SERVICE $LOCK_ANNOTATION-"
  # Without --overwrite, annotate fails if another run set it since the check above.
  k annotate service "$ACTIVE_SERVICE" "$LOCK_ANNOTATION=$1, started $(date -u +%FT%TZ)" >/dev/null ||
    die "could not take the lock (annotation $LOCK_ANNOTATION on $ACTIVE_SERVICE)"
  trap release_lock EXIT
}

release_lock() {
  k annotate service "$ACTIVE_SERVICE" "$LOCK_ANNOTATION-" >/dev/null ||
    log "warning: could not remove the lock; remove it by hand: kubectl -n $NAMESPACE annotate service $ACTIVE_SERVICE $LOCK_ANNOTATION-"
}

# start_colour COLOUR REPLICAS APPLY: APPLY=yes applies its overlay first. Waits
# until every pod of the new ReplicaSet is ready (kubectl rollout status).
start_colour() {
  local colour=$1 replicas=$2 apply=$3
  if [[ $apply == yes ]]; then
    k apply --server-side -k "$OVERLAYS/$colour" >&2 || return 1
  fi
  k scale deployment "$DEPLOYMENT_PREFIX$colour" --replicas="$replicas" >&2 || return 1
  k rollout status deployment "$DEPLOYMENT_PREFIX$colour" --timeout="${READY_TIMEOUT_S}s" >&2
}

# in_cluster_check MODE COLOUR: runs tools/k8s/k8s-smoke.ts (compiled) in a one-shot pod
# of COLOUR's image, in the namespace, so it reaches the Services as clients inside
# the cluster do. The pod is labelled apart from the replicas (no Service selects
# it) and is as locked down as they are, so restricted Pod Security admits it.
in_cluster_check() {
  local mode=$1 colour=$2 image pod overrides output
  image=$(k get deployment "$DEPLOYMENT_PREFIX$colour" -o 'jsonpath={.spec.template.spec.containers[0].image}')
  pod=wschat-check-$mode-$(date +%s)
  overrides=$(
    cat <<EOF
{"apiVersion": "v1", "spec": {
  "automountServiceAccountToken": false,
  "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{
    "name": "$pod", "image": "$image", "stdin": true, "stdinOnce": true,
    "command": ["node", "--input-type=module", "-", "$mode", "$colour", "http://$ACTIVE_SERVICE", "http://$PREVIEW_SERVICE"],
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
  }]
}}
EOF
  )
  output=$(k run "$pod" --image="$image" --restart=Never --rm -i --quiet \
    --labels=app.kubernetes.io/name=wschat-check --pod-running-timeout=2m \
    --overrides="$overrides" <"$SMOKE_SCRIPT" 2>&1) || {
    log "  $output"
    return 1
  }
  log "  $output"
  [[ $output == *"check: ok"* ]]
}

# wait_gone COLOUR: true once no pod of COLOUR exists (every drain over), within
# RETIRE_TIMEOUT_S.
wait_gone() {
  local deadline=$((SECONDS + RETIRE_TIMEOUT_S))
  while [[ -n $(k get pods --selector "$COLOUR_LABEL=$1,app.kubernetes.io/name=wschat" -o name) ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

# abort_before_flip COLOUR REASON: the live colour was never touched.
abort_before_flip() {
  log "promotion failed before the flip: $2"
  log "last lines of $1's pods:"
  k logs --selector "$COLOUR_LABEL=$1,app.kubernetes.io/name=wschat" --prefix --tail=10 >&2 || true
  log "scaling $1 back to 0"
  k scale deployment "$DEPLOYMENT_PREFIX$1" --replicas=0 >&2 || log "warning: could not scale $1 to 0"
  die "promotion to $1 aborted ($2); $(selected_colour "$ACTIVE_SERVICE" || echo '?') is still live"
}

main() {
  local live target apply=yes replicas started
  [[ -f $SMOKE_SCRIPT ]] || die "$SMOKE_SCRIPT is missing: npm run build first"
  live=$(selected_colour "$ACTIVE_SERVICE") || die "no service $ACTIVE_SERVICE in namespace $NAMESPACE: apply deploy/k8s/routing first"
  [[ $live == blue || $live == green ]] || die "$ACTIVE_SERVICE selects colour '$live', not blue or green"
  case ${1:-} in
    --rollback)
      target=$(other_colour "$live")
      apply=no
      ;;
    '') target=$(other_colour "$live") ;;
    blue | green) target=$1 ;;
    *) die "usage: tools/k8s/k8s-promote.sh [blue|green|--rollback]" ;;
  esac
  [[ $target != "$live" ]] || die "$target is already live"
  if [[ $apply == no ]] && ! k get deployment "$DEPLOYMENT_PREFIX$target" >/dev/null 2>&1; then
    die "no deployment $DEPLOYMENT_PREFIX$target to roll back to"
  fi
  take_lock "$live -> $target"
  started=$(now_ms)
  # The new colour takes every client of the old one at step 4: give it the same size.
  replicas=$(replicas_of "$live" || echo 0)
  ((replicas >= MIN_REPLICAS)) || replicas=$MIN_REPLICAS
  log "promoting $live -> $target ($replicas replicas, namespace $NAMESPACE)"

  local how="scale up, keeping its release"
  [[ $apply == no ]] || how="apply deploy/k8s/overlays/$target"
  step "1/4 start $target ($how)"
  start_colour "$target" "$replicas" "$apply" || abort_before_flip "$target" "it did not roll out and become ready in ${READY_TIMEOUT_S}s"
  step_done

  step "2/4 smoke-test $target through $PREVIEW_SERVICE"
  select_colour "$PREVIEW_SERVICE" "$target" || abort_before_flip "$target" "could not point $PREVIEW_SERVICE at it"
  in_cluster_check smoke "$target" || abort_before_flip "$target" "smoke checks failed"
  step_done

  step "3/4 flip $ACTIVE_SERVICE to $target"
  flip_to "$target" || {
    flip_to "$live" || log "error: could not restore the selectors; check $ACTIVE_SERVICE now"
    abort_before_flip "$target" "the selector patch failed"
  }
  if ! in_cluster_check live "$target"; then
    log "$ACTIVE_SERVICE does not answer $target: flipping back to $live"
    flip_to "$live" || log "error: the flip back to $live failed too; check $ACTIVE_SERVICE now"
    abort_before_flip "$target" "$ACTIVE_SERVICE did not serve $target after the flip"
  fi
  step_done

  step "4/4 retire $live (scale to 0: preStop, SIGTERM, drain; clients move to $target)"
  k scale deployment "$DEPLOYMENT_PREFIX$live" --replicas=0 >&2
  wait_gone "$live" || log "warning: pods of $live still exist after ${RETIRE_TIMEOUT_S}s"
  step_done

  log "promotion to $target complete in $(($(now_ms) - started)) ms; roll back with: tools/k8s/k8s-promote.sh --rollback"
}

main "$@"
