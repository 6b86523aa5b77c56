/**
 * Loading / empty / error block of a page. Renders nothing in the 'ready' state.
 * Events: retry (error state's 重试 button), action (empty state's optional button).
 */
Component({
  properties: {
    state: { type: String, value: 'loading' },
    errorText: { type: String, value: '' },
    emptyText: { type: String, value: '暂无数据' },
    loadingText: { type: String, value: '加载中…' },
    actionText: { type: String, value: '' },
  },
  methods: {
    onRetry() {
      this.triggerEvent('retry');
    },
    onAction() {
      this.triggerEvent('action');
    },
  },
});
