namespace Treechunk;

/// <summary>
/// An error the user can act on: bad input, a corrupt image, a failed verification.
/// The CLI prints <see cref="Exception.Message"/> as one line and exits with <see cref="ExitCode"/>;
/// anything else that escapes is a bug and is reported as an internal error.
/// </summary>
public class TreechunkException : Exception
{
    public int ExitCode { get; }

    public TreechunkException(string message, int exitCode = ExitCodes.BadInput, Exception? inner = null)
        : base(message, inner) => ExitCode = exitCode;
}

/// <summary>Exit codes with one meaning each, documented in the README.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>A verification ran and found the image (or its content) wrong.</summary>
    public const int VerificationFailed = 1;
    /// <summary>Bad command line or bad input (missing file, invalid format, refused path).</summary>
    public const int BadInput = 2;
    /// <summary>The environment failed us: I/O error, missing tool, no permission.</summary>
    public const int EnvironmentError = 3;
    /// <summary>A bug: an exception nobody expected.</summary>
    public const int InternalError = 70;
}
