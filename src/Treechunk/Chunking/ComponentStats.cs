using System.Text.Json;

namespace Treechunk.Chunking;

/// <summary>The per-layer component statistics annotation: {"name":[files,bytes],...}, names sorted.</summary>
public static class ComponentStats
{
    public static string Format(IEnumerable<string> names, IReadOnlyDictionary<string, Component> byName)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            foreach (var n in names.OrderBy(n => n, StringComparer.Ordinal))
            {
                var c = byName[n];
                w.WriteStartArray(n);
                w.WriteNumberValue(c.FileCount);
                w.WriteNumberValue(c.Size);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Parses the annotation; null when absent or malformed (images from other tools).</summary>
    public static List<(string Name, int Files, long Bytes)>? Parse(string? value)
    {
        if (string.IsNullOrEmpty(value)) return null;
        try
        {
            using var doc = JsonDocument.Parse(value);
            return doc.RootElement.EnumerateObject()
                .Select(p => (p.Name, p.Value[0].GetInt32(), p.Value[1].GetInt64())).ToList();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or IndexOutOfRangeException or FormatException)
        {
            return null;
        }
    }
}
