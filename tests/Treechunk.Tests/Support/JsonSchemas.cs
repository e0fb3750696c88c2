using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Xunit.Sdk;

namespace Treechunk.Tests.Support;

/// <summary>
/// Validates JSON documents against the published schemas shipped under
/// tests/Treechunk.Tests/Scanning/schemas (copied next to the test assembly):
/// spdx-2.3.schema.json, bom-1.5.schema.json (with its spdx.schema.json and
/// jsf-0.82.schema.json), sarif-2.1.0.schema.json. See SOURCE.md there.
/// </summary>
/// <remarks>
/// All schemas are built once into a private <see cref="SchemaRegistry"/>, so the
/// CycloneDX $refs (spdx.schema.json, jsf-0.82.schema.json#/definitions/signature,
/// resolved against http://cyclonedx.org/schema/) find the local files; fetching is
/// switched off, nothing goes to the network. "format" is asserted
/// (RequireFormatValidation): date-time, uri, uri-reference, iri-reference and
/// idn-email must be well formed. The SARIF 2.1.0 schema declares draft-04, which
/// JsonSchema.Net 8 has no dialect for; it is evaluated as draft-07 (see
/// <see cref="Load"/>): the file uses no keyword whose meaning differs between the two.
/// </remarks>
public static class JsonSchemas
{
    public const string Spdx23 = "spdx-2.3.schema.json";
    public const string CycloneDx15 = "bom-1.5.schema.json";
    public const string Sarif210 = "sarif-2.1.0.schema.json";

    const int MaxErrorsShown = 10;
    const string Draft04 = "http://json-schema.org/draft-04/schema#";
    const string Draft07 = "http://json-schema.org/draft-07/schema#";

    // Referenced schemas first: a schema's $refs are resolved when it is built.
    static readonly string[] LoadOrder =
        ["spdx.schema.json", "jsf-0.82.schema.json", CycloneDx15, Spdx23, Sarif210];

    static readonly Lazy<IReadOnlyDictionary<string, JsonSchema>> Schemas = new(LoadAll);

    public static string Directory => Path.Join(AppContext.BaseDirectory, "Scanning", "schemas");

    /// <summary>The built schema for a file name in <see cref="Directory"/>.</summary>
    public static JsonSchema Get(string schemaFileName) =>
        Schemas.Value.TryGetValue(schemaFileName, out var schema)
            ? schema
            : throw new ArgumentException($"no schema '{schemaFileName}'; have: {string.Join(", ", Schemas.Value.Keys)}", nameof(schemaFileName));

    /// <summary>Every error of <paramref name="json"/> against the schema, as "instance location: message" lines; empty when valid.</summary>
    public static IReadOnlyList<string> Errors(string json, string schemaFileName)
    {
        var schema = Get(schemaFileName);
        using var doc = JsonDocument.Parse(json);
        var results = schema.Evaluate(doc.RootElement, new EvaluationOptions
        {
            OutputFormat = OutputFormat.List,
            RequireFormatValidation = true,
        });
        if (results.IsValid) return [];
        var errors = new List<string>();
        foreach (var node in Flatten(results))
            if (node.Errors is { Count: > 0 } nodeErrors)
                foreach (var (keyword, message) in nodeErrors)
                    errors.Add($"{Location(node.InstanceLocation.ToString())}: {message} [{(keyword.Length == 0 ? "false schema" : keyword)} at #{node.EvaluationPath}]");
        if (errors.Count == 0) errors.Add("invalid, but the validator named no error");
        return errors;
    }

    /// <summary>Fails (XunitException) unless <paramref name="json"/> is valid against the named schema.</summary>
    public static void AssertValid(string json, string schemaFileName)
    {
        var errors = Errors(json, schemaFileName);
        if (errors.Count == 0) return;
        var message = new StringBuilder($"JSON is not valid against {schemaFileName}: {errors.Count} error(s)");
        foreach (var error in errors.Take(MaxErrorsShown)) message.Append("\n  ").Append(error);
        if (errors.Count > MaxErrorsShown) message.Append($"\n  … and {errors.Count - MaxErrorsShown} more");
        throw new XunitException(message.ToString());
    }

    static string Location(string pointer) => pointer.Length == 0 ? "/" : pointer;

    static IEnumerable<EvaluationResults> Flatten(EvaluationResults results)
    {
        yield return results;
        if (results.Details is null) yield break;
        foreach (var detail in results.Details)
            foreach (var node in Flatten(detail))
                yield return node;
    }

    static IReadOnlyDictionary<string, JsonSchema> LoadAll()
    {
        var registry = new SchemaRegistry { Fetch = (uri, _) => throw new InvalidOperationException($"schema {uri} is not shipped in {Directory}; no network fetch") };
        var options = new BuildOptions { SchemaRegistry = registry };
        var schemas = new Dictionary<string, JsonSchema>(StringComparer.Ordinal);
        foreach (var name in LoadOrder)
        {
            try { schemas[name] = Load(name, options); }
            catch (Exception e) { throw new InvalidOperationException($"building {name}: {e.Message}", e); }
        }
        return schemas;
    }

    /// <summary>
    /// Builds one shipped schema. A draft-04 schema (SARIF 2.1.0) is rewritten in memory
    /// to declare draft-07 and to carry its draft-04 "id" as "$id"; the file is unchanged.
    /// </summary>
    static JsonSchema Load(string name, BuildOptions options)
    {
        var node = JsonNode.Parse(File.ReadAllText(Path.Join(Directory, name)))!.AsObject();
        if (node["$schema"]?.GetValue<string>() == Draft04)
        {
            // "$id" must come first: with it appended after "definitions", JsonSchema.Net 8.0.5
            // fails to build ("Overwriting registered schemas is not permitted").
            var rewritten = new JsonObject { ["$schema"] = Draft07 };
            if (node["id"] is JsonNode id && !node.ContainsKey("$id")) rewritten["$id"] = id.DeepClone();
            foreach (var (key, value) in node)
                if (key is not ("$schema" or "id")) rewritten[key] = value?.DeepClone();
            node = rewritten;
        }
        using var doc = JsonDocument.Parse(node.ToJsonString());
        return JsonSchema.Build(doc.RootElement.Clone(), options);
    }
}
