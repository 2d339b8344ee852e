import { auth0 } from "../../../lib/auth0";

export const dynamic = "force-dynamic";

// getAccessToken(), forced to use the refresh token with ?refresh=1. For the test only, it also shows the session's
// refresh token (so the test can check that logout revoked it).
export async function GET(request: Request) {
  const refresh = new URL(request.url).searchParams.get("refresh") === "1";
  try {
    const { token, expiresAt } = await auth0.getAccessToken({ refresh });
    const session = await auth0.getSession();
    return Response.json({ token, expiresAt, refreshToken: session?.tokenSet.refreshToken ?? null });
  } catch (e) {
    const err = e as { code?: string; message?: string; cause?: unknown };
    return Response.json({ error: err.code ?? "error", message: err.message, cause: String(err.cause ?? "") }, { status: 500 });
  }
}
