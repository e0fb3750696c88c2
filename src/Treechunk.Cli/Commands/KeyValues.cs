namespace Treechunk.Cli.Commands;

public static class KeyValues
{
    /// <summary>Parses "k=v" items, each possibly a comma-separated list ("a=1,b=2"), later keys winning.</summary>
    public static Dictionary<string, string> Parse(IEnumerable<string>? items, string option, bool allowCommaLists)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in items ?? [])
        {
            var parts = allowCommaLists ? item.Split(',') : [item];
            foreach (var part in parts)
            {
                int eq = part.IndexOf('=');
                if (eq <= 0) throw new TreechunkException($"{option}: '{part}' is not key=value");
                result[part[..eq].Trim()] = part[(eq + 1)..];
            }
        }
        return result;
    }
}
