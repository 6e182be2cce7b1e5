/**
 * Validation of Vega-Lite specs against the JSON schema that the vega-lite package ships
 * (build/vega-lite-schema.json), with ajv. The compiled validator is cached.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let validator: ((spec: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params?: Record<string, unknown> }[] | null } | null = null;

/** The vega-lite schema file this install validates against. */
export const vlSchemaFile = () => require.resolve('vega-lite/vega-lite-schema.json');

async function compile() {
  if (validator) return validator;
  const { default: Ajv } = (await import('ajv')) as any;
  const schema = JSON.parse(readFileSync(vlSchemaFile(), 'utf8'));
  // the schema uses draft-07 with a few non-standard keywords; strict mode would reject them
  const ajv = new Ajv({ strict: false, allErrors: false, validateSchema: false, validateFormats: false, logger: false });
  validator = ajv.compile(schema);
  return validator!;
}

/** Problems with the spec as 'path: message' lines; [] when it is valid Vega-Lite. */
export async function validateVegaLite(spec: unknown): Promise<string[]> {
  const v = await compile();
  if (v(spec)) return [];
  // anyOf failures list every branch; say each distinct problem once, with the allowed values
  const lines = (v.errors ?? []).map((e) => {
    const allowed = e.params?.allowedValue ?? e.params?.allowedValues;
    return `${e.instancePath || '/'}: ${e.message ?? 'invalid'}${allowed !== undefined ? ` ${JSON.stringify(allowed)}` : ''}`;
  });
  return [...new Set(lines)].slice(0, 6);
}
