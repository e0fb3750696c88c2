using Treechunk.Tests.Support;
using Xunit.Sdk;

namespace Treechunk.Tests.Scanning;

/// <summary>
/// The shipped SPDX 2.3, CycloneDX 1.5 and SARIF 2.1.0 schemas load offline, accept
/// a minimal valid document and reject a broken one, so <see cref="JsonSchemas.AssertValid"/>
/// can be trusted by the scanner's output tests.
/// </summary>
public class SchemaFixtureTests
{
    const string SpdxMinimal = """
        {
          "spdxVersion": "SPDX-2.3",
          "dataLicense": "CC0-1.0",
          "SPDXID": "SPDXRef-DOCUMENT",
          "name": "treechunk-test",
          "documentNamespace": "https://example.invalid/spdx/treechunk-test-1",
          "creationInfo": { "created": "2024-01-02T03:04:05Z", "creators": ["Tool: treechunk"] },
          "packages": [
            { "SPDXID": "SPDXRef-Package-zlib", "name": "zlib", "versionInfo": "1.3", "downloadLocation": "NOASSERTION" }
          ]
        }
        """;

    const string CycloneDxMinimal = """
        {
          "bomFormat": "CycloneDX",
          "specVersion": "1.5",
          "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
          "version": 1,
          "metadata": { "timestamp": "2024-01-02T03:04:05Z" },
          "components": [
            {
              "type": "library", "name": "zlib", "version": "1.3",
              "purl": "pkg:deb/debian/zlib1g@1.3",
              "licenses": [ { "license": { "id": "Zlib" } } ]
            }
          ]
        }
        """;

    const string SarifMinimal = """
        {
          "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
          "version": "2.1.0",
          "runs": [
            {
              "tool": { "driver": { "name": "treechunk", "informationUri": "https://example.invalid/treechunk", "rules": [ { "id": "TC0001" } ] } },
              "results": [
                {
                  "ruleId": "TC0001", "level": "warning",
                  "message": { "text": "something found" },
                  "locations": [ { "physicalLocation": { "artifactLocation": { "uri": "usr/lib/libz.so.1" } } } ]
                }
              ]
            }
          ]
        }
        """;

    static string Replace(string json, string from, string to)
    {
        Assert.Contains(from, json);
        return json.Replace(from, to);
    }

    static void AssertInvalid(string json, string schema, string expectedInMessage)
    {
        var ex = Assert.Throws<XunitException>(() => JsonSchemas.AssertValid(json, schema));
        Assert.Contains(schema, ex.Message);
        Assert.Contains(expectedInMessage, ex.Message);
    }

    [Fact]
    public void Spdx23_minimal_document_is_valid() => JsonSchemas.AssertValid(SpdxMinimal, JsonSchemas.Spdx23);

    [Fact]
    public void Spdx23_missing_spdxVersion_fails()
    {
        var json = Replace(SpdxMinimal, "\"spdxVersion\": \"SPDX-2.3\",", "");
        AssertInvalid(json, JsonSchemas.Spdx23, "spdxVersion");
    }

    [Fact]
    public void Spdx23_unknown_top_level_property_fails()
    {
        // The 2.3 schema puts no pattern on SPDXID, but closes its objects (additionalProperties: false).
        var json = Replace(SpdxMinimal, "\"name\": \"treechunk-test\",", "\"name\": \"treechunk-test\", \"spdxId\": \"SPDXRef-DOCUMENT\",");
        AssertInvalid(json, JsonSchemas.Spdx23, "spdxId");
    }

    [Fact]
    public void CycloneDx15_minimal_bom_is_valid() => JsonSchemas.AssertValid(CycloneDxMinimal, JsonSchemas.CycloneDx15);

    [Fact]
    public void CycloneDx15_wrong_bomFormat_fails()
    {
        var json = Replace(CycloneDxMinimal, "\"bomFormat\": \"CycloneDX\"", "\"bomFormat\": \"Nope\"");
        AssertInvalid(json, JsonSchemas.CycloneDx15, "/bomFormat");
    }

    [Fact]
    public void CycloneDx15_license_id_is_checked_through_the_shipped_spdx_schema()
    {
        // licenses[].license.id is {"$ref": "spdx.schema.json"}: resolved offline from the registry.
        var json = Replace(CycloneDxMinimal, "\"id\": \"Zlib\"", "\"id\": \"Not-A-License\"");
        AssertInvalid(json, JsonSchemas.CycloneDx15, "/components/0/licenses/0/license/id");
    }

    [Fact]
    public void CycloneDx15_signature_refs_the_shipped_jsf_schema()
    {
        // signature is {"$ref": "jsf-0.82.schema.json#/definitions/signature"}; a JSF signer needs "algorithm".
        var signed = Replace(CycloneDxMinimal, "\"version\": 1,", "\"version\": 1, \"signature\": { \"algorithm\": \"ES256\", \"value\": \"AAAA\" },");
        JsonSchemas.AssertValid(signed, JsonSchemas.CycloneDx15);
        var unsigned = Replace(CycloneDxMinimal, "\"version\": 1,", "\"version\": 1, \"signature\": { \"value\": \"AAAA\" },");
        AssertInvalid(unsigned, JsonSchemas.CycloneDx15, "/signature");
    }

    [Fact]
    public void CycloneDx15_format_date_time_is_asserted()
    {
        var json = Replace(CycloneDxMinimal, "\"timestamp\": \"2024-01-02T03:04:05Z\"", "\"timestamp\": \"yesterday\"");
        AssertInvalid(json, JsonSchemas.CycloneDx15, "/metadata/timestamp");
    }

    [Fact]
    public void Sarif210_minimal_log_is_valid() => JsonSchemas.AssertValid(SarifMinimal, JsonSchemas.Sarif210);

    [Fact]
    public void Sarif210_missing_version_fails()
    {
        var json = Replace(SarifMinimal, "\"version\": \"2.1.0\",", "");
        AssertInvalid(json, JsonSchemas.Sarif210, "version");
    }

    [Fact]
    public void Sarif210_bad_result_level_fails()
    {
        var json = Replace(SarifMinimal, "\"level\": \"warning\"", "\"level\": \"fatal\"");
        AssertInvalid(json, JsonSchemas.Sarif210, "/runs/0/results/0/level");
    }

    [Fact]
    public void Sarif210_format_uri_is_asserted()
    {
        var json = Replace(SarifMinimal, "\"informationUri\": \"https://example.invalid/treechunk\"", "\"informationUri\": \"not a uri\"");
        AssertInvalid(json, JsonSchemas.Sarif210, "/runs/0/tool/driver/informationUri");
    }

    [Fact]
    public void Errors_is_empty_for_valid_and_lists_instance_locations_for_invalid()
    {
        Assert.Empty(JsonSchemas.Errors(CycloneDxMinimal, JsonSchemas.CycloneDx15));
        var errors = JsonSchemas.Errors(Replace(CycloneDxMinimal, "\"specVersion\": \"1.5\",", ""), JsonSchemas.CycloneDx15);
        Assert.Contains(errors, e => e.StartsWith("/: ") && e.Contains("specVersion"));
    }

    [Fact]
    public void Unknown_schema_name_is_an_argument_error() =>
        Assert.Throws<ArgumentException>(() => JsonSchemas.AssertValid("{}", "bom-9.9.schema.json"));
}
