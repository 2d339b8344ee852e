import { auth0 } from "./lib/auth0";

// Next.js 16's proxy (formerly middleware), as the SDK's README for Next.js 16 says.
export async function proxy(request: Request) {
  return await auth0.middleware(request);
}

export const config = {
  matcher: ["/((?!_next/static|_next/image|favicon.ico|sitemap.xml|robots.txt).*)"]
};
