// jest setup (unit and e2e): Tencent's simulator defines Component/Behavior and a stub `wx`;
// TDesign components call getApp(), pages may call getCurrentPages().
require('miniprogram-simulate');

const app = { globalData: {} };
global.getApp = () => app;
global.getCurrentPages = () => [];
global.Page = (options) => global.Component(options);
global.App = () => {};
