/**
 * Fields the Kubernetes API does not know. Its OpenAPI schemas allow extra properties,
 * so schema validation passes a misspelt field (`readinessProb:`) that the API server
 * rejects (kubectl's strict field validation) or, worse, drops silently. TypeScript's
 * excess-property check finds them: each object becomes
 * `export const value: IDeployment = {...}` in an in-memory file, type-checked against
 * the same models' types. Every compiler diagnostic is returned, naming the object.
 */
import path from 'node:path';
import ts from 'typescript';

export interface TypedObject {
  /** For messages, e.g. "Deployment/wschat-blue". */
  name: string;
  /** Module and exported interface of the object's type, e.g. kubernetes-models/apps/v1/Deployment, IDeployment. */
  typeModule: string;
  typeName: string;
  value: unknown;
}

export function unknownFieldErrors(repoRoot: string, objects: readonly TypedObject[]): string[] {
  // Inside the repository, so that module resolution finds node_modules and the
  // package's "type": "module".
  const files = new Map(
    objects.map((object, index) => [
      path.join(repoRoot, `k8s-object-${index}.generated.ts`),
      {
        name: object.name,
        text: `import type { ${object.typeName} } from '${object.typeModule}';\nexport const value: ${object.typeName} = ${JSON.stringify(object.value, null, 2)};\n`,
      },
    ]),
  );
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const program = ts.createProgram([...files.keys()], options, {
    ...host,
    fileExists: (fileName) => files.has(fileName) || host.fileExists(fileName),
    readFile: (fileName) => files.get(fileName)?.text ?? host.readFile(fileName),
    getSourceFile: (fileName, languageVersion, onError, shouldCreate) => {
      const file = files.get(fileName);
      return file === undefined
        ? host.getSourceFile(fileName, languageVersion, onError, shouldCreate)
        : ts.createSourceFile(fileName, file.text, languageVersion);
    },
  });
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
    const file = diagnostic.file === undefined ? undefined : files.get(diagnostic.file.fileName);
    return file === undefined ? message : `${file.name}: ${message}`;
  });
}
