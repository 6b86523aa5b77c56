// Test-only host: loading it registers every page once (shared components included), so one
// jest file can render many pages (miniprogram-simulate registers a path only once per file).
Component({});
